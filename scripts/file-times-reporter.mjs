// A vitest reporter that writes each test file's time, its tests and hooks as vitest's own summary line
// counts them, to the JSON file $SPARKRING_FILE_TIMES (scripts/run-tests.mjs prints them). The JSON
// reporter's start and end times are not that where files run side by side.
import { writeFileSync } from 'node:fs';

export default class FileTimesReporter {
  times = {};

  onTestModuleEnd(testModule) {
    this.times[testModule.relativeModuleId] = testModule.diagnostic().duration / 1000;
  }

  onTestRunEnd() {
    if (process.env.SPARKRING_FILE_TIMES) writeFileSync(process.env.SPARKRING_FILE_TIMES, JSON.stringify(this.times));
  }
}
