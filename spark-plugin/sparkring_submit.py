"""The file given to spark-submit (a primary resource must be a file): runs sparkring.submit."""

import sys

from sparkring.submit import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
