"""``python -m aliyun_image``: see :mod:`aliyun_image.cli.commands`."""

import sys

from .cli.commands import main

sys.exit(main())
