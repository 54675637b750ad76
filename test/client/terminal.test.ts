/** Text from workers, Livy and Redis entries is printed without the escapes that would drive the terminal. */
import { expect, it } from 'vitest';
import { Progress } from '../../src/client/run/progress.js';
import { printable } from '../../src/util/terminal.js';

it('drops escape sequences and control characters, and keeps the text and its tabs', () => {
  expect(printable('\x1b[2J\x1b[1;1Hloss\t0.5 \x1b[31mred\x1b[0m')).toBe('loss\t0.5 red');
  expect(printable('\x1b]0;owned\x07title')).toBe('title');
  expect(printable('a\rb\x08c\x00d\x9be')).toBe('abcde');
  expect(printable('plain — ünïcode ✓')).toBe('plain — ünïcode ✓');
});

it("prints a worker's log line without its escapes", () => {
  const lines: string[] = [];
  const progress = new Progress((l) => lines.push(l));
  progress.on({ type: 'log', rank: 1, line: 'done\x1b[2K\x1b[1Afake: all ranks ok' });
  expect(lines).toEqual(['[worker 1] donefake: all ranks ok']);
});
