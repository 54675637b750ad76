"""The file given to spark-submit (a primary resource must be a file): runs sparkring.driver."""

import sys

from sparkring.driver import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
