"""aliyun-image web app: ``python app.py`` (see ``--help``), the entry point of a Hugging Face Space.

Everything lives in :mod:`aliyun_image.cli.webapp` (also installed as the ``aliyun-image-app``
command): with ``DASHSCOPE_API_KEY`` set it calls the real API, without it starts an offline
demo on the built-in emulator; ``--hosted`` (automatic when ``SPACE_ID`` is set) turns on the
shared-demo safeguards.
"""

import sys

from aliyun_image.cli.webapp import main

if __name__ == "__main__":
    sys.exit(main())
