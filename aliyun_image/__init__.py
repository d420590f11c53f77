"""aliyun-image: Alibaba Cloud Bailian (DashScope) Qwen-Image from a browser or a terminal.

The package is the service layer: settings (:mod:`.config`), the model table
(:mod:`.catalog`), input images (:mod:`.images`), HTTP (:mod:`.client`), use cases
(:mod:`.service`), the gallery store (:mod:`.store`) and a local DashScope emulator
(:mod:`.emulator`). It never imports Gradio.
"""

import logging

__version__ = "0.1.0"

# A library stays quiet unless the application configures logging: without this, Python's
# last-resort handler would print warnings (and tracebacks) straight to a CLI user's terminal.
logging.getLogger(__name__).addHandler(logging.NullHandler())
