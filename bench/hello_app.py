"""The smallest Gradio app (one textbox, one button), launched like app.py: the cold-start floor
of any Gradio app, to tell Gradio's own launch cost from ours. ``python bench/hello_app.py --port P``."""

from __future__ import annotations

import argparse

import gradio as gr

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--offline", action="store_true")  # accepted and ignored, like app.py's flag
    args = ap.parse_args()
    with gr.Blocks() as demo:
        box = gr.Textbox(label="prompt")
        out = gr.Textbox(label="echo")
        gr.Button("go").click(lambda s: s, box, out, api_name="generate")
    demo.queue().launch(server_name="127.0.0.1", server_port=args.port, show_error=True)
