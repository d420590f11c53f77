"""``python app.py`` exactly, except that Gradio's queue keeps its own polling (1 ms when idle): the
baseline of ``bench/idle_cpu.py``. ``python bench/gradio_default_polling_app.py --offline --port P``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    from aliyun_image.ui import layout

    layout.quiet_queue_polling = lambda demo: None  # what the app did before: Gradio's defaults
    from aliyun_image.cli.webapp import main

    sys.exit(main())
