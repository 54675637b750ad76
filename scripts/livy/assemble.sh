#!/usr/bin/env bash
# Puts a Livy server's jars in .cache/livy/jars (once; quick when they are there).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.cache/livy/jars"
if [ -f "$out/.complete" ]; then exit 0; fi
rm -rf "$out"
mvn -q -B -f "$root/scripts/livy/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out"
ls "$out"/livy-server-*.jar >/dev/null
touch "$out/.complete"
