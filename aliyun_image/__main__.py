"""``python -m aliyun_image``: see :mod:`aliyun_image.cli`."""

import sys

from .cli import main

sys.exit(main())
