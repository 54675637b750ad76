/**
 * The error codes are one table in two languages (src/errors/codes.ts, spark-plugin/sparkring/error_codes.py):
 * this fails where they disagree. The ring's errors carry theirs through the abort frame.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  CollectiveMismatchError,
  CollectiveTimeoutError,
  decodeAbort,
  encodeAbort,
  FrameRefusedError,
  PeerFailedError,
  RingClosedError,
  RingError,
  RingFormationTimeoutError,
  RingHandshakeError,
  UnevenStepsError,
} from '../../src/collective/errors.js';
import { codeOf, ERROR_CODES, isErrorCode } from '../../src/errors/codes.js';
import { EntryError } from '../../src/runtime/entry.js';
import { RingInterfaceError } from '../../src/runtime/ring-address.js';
import { PYTHON, ROOT } from '../helpers/spark.js';

describe('error codes', () => {
  it('the Python table has the same codes, kinds and finality as the TypeScript one', () => {
    const python = JSON.parse(
      execFileSync(PYTHON, ['-c', 'import json, sparkring.error_codes as c; print(json.dumps(c.CODES))'], {
        cwd: `${ROOT}spark-plugin`,
        encoding: 'utf8',
      }),
    );
    expect(python).toEqual(ERROR_CODES);
  });

  it('every error class that leaves a worker has a code of the table; anything else is the entry failing', () => {
    const errors = [
      new RingError('x'),
      new RingHandshakeError('secret', '10.0.0.2:1', 'no'),
      new RingFormationTimeoutError(0, [], 1000),
      new PeerFailedError(1, '10.0.0.2:1', 'lost', 0, 'gone'),
      new FrameRefusedError(1, '10.0.0.2:1', 'too much'),
      new CollectiveMismatchError('x'),
      new RingClosedError(),
      new CollectiveTimeoutError('x', [1]),
      new UnevenStepsError('x', 1),
      new RingInterfaceError('x'),
      new EntryError('x'),
    ];
    const codes = errors.map(codeOf);
    expect(codes.every(isErrorCode)).toBe(true);
    expect(new Set(codes).size).toBe(errors.length);
    expect(codeOf(new Error('boom'))).toBe('SR_ENTRY_FAILED');
    expect(codeOf(Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toBe('SR_ENTRY_FAILED');
  });

  it('an abort frame carries the error, its class and its code to the other ranks', () => {
    const hostOf = (rank: number) => `h${rank}`;
    const peer = decodeAbort(encodeAbort(new PeerFailedError(2, '10.0.0.3:9', 'stalled', 1, 'quiet'), 1000), hostOf);
    expect(peer).toBeInstanceOf(PeerFailedError);
    expect(peer).toMatchObject({ code: 'SR_PEER_LOST', peerRank: 2, peerHost: 'h2', failure: 'stalled', detectedBy: 1 });
    const uneven = decodeAbort(encodeAbort(new UnevenStepsError('rank 1 returned', 1), 1000), hostOf);
    expect(uneven).toMatchObject({ code: 'SR_UNEVEN_STEPS', returnedRank: 1, message: 'rank 1 returned' });
    const timeout = decodeAbort(encodeAbort(new CollectiveTimeoutError('waited', [0, 2]), 1000), hostOf);
    expect(timeout).toMatchObject({ code: 'SR_COLLECTIVE_TIMEOUT', missingRanks: [0, 2] });
    expect(decodeAbort(Buffer.from('not json'), hostOf)).toMatchObject({ code: 'SR_RING' });
  });
});
