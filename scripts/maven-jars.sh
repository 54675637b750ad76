#!/usr/bin/env bash
# Copies the runtime dependencies of scripts/NAME/pom.xml (Maven Central) into .cache/NAME/jars,
# once; quick when they are there. Used for the tests' real Livy server and YARN.
set -euo pipefail
name="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.cache/$name/jars"
pom="$root/scripts/$name/pom.xml"
if [ -f "$out/.complete" ] && [ "$out/.complete" -nt "$pom" ]; then exit 0; fi
rm -rf "$out"
mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out"
touch "$out/.complete"
