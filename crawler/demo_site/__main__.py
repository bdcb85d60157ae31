import sys

from crawler.demo_site.server import main

sys.exit(main())
