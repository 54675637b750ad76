"""The file given to spark-submit (a primary resource must be a file): runs sparkring.driver.submit."""

import sys

from sparkring.driver.submit import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
