/** How the client reads a failed driver result: by code, never by message text. */
import { describe, expect, it } from 'vitest';
import { driverError } from '../../src/client/jobs/driver-error.js';

describe('driverError', () => {
  it('a driver error without a known code is reported as a sparkring bug', () => {
    for (const code of [undefined, 'SR_NO_SUCH_CODE']) {
      const e = driverError({ code, kind: 'job', message: 'cannot read --data /x' }, []);
      expect(e.kind).toBe('spark');
      expect(e.message).toBe(
        `the driver reported an error without a known code (${code ?? 'none'}), a sparkring bug: cannot read --data /x`,
      );
    }
  });

  it('the code sets the kind and whether a retry can help; the message is kept as it is', () => {
    const data = driverError({ code: 'SR_DATA_PATH', kind: 'input', message: 'cannot read --data /x: ...' }, [], '/runs/1');
    expect(data).toMatchObject({ kind: 'input', message: 'cannot read --data /x: ...', detail: { final: true, dir: '/runs/1' } });
    expect(data.code).toBe('SR_DATA_PATH');
    expect(driverError({ code: 'SR_SLOTS', kind: 'slots', message: 'm' }, [])).toMatchObject({
      kind: 'slots',
      detail: { final: true },
    });
    expect(driverError({ code: 'SR_SPARK', kind: 'spark', message: 'm' }, [])).toMatchObject({
      kind: 'spark',
      detail: { final: false },
    });
  });

  it('a worker failure names the rank that failed first, not the ones that lost it as a peer', () => {
    const e = driverError(
      { code: 'SR_PEER_LOST', kind: 'worker', rank: 1, message: 'PeerFailedError: ring peer rank 0 ...', stack: 's1' },
      [
        { rank: 1, code: 'SR_PEER_LOST', message: 'PeerFailedError: ring peer rank 0 ...' },
        { rank: 0, code: 'SR_DATA_COLUMN', message: 'DataColumnError: data column "name" in row batch 0: ...', stack: 's0' },
      ],
    );
    expect(e).toMatchObject({
      kind: 'input',
      message: 'worker 0 failed: DataColumnError: data column "name" in row batch 0: ...',
      detail: { rank: 0, final: true, workerStack: 's0', code: 'SR_DATA_COLUMN' },
    });
  });

  it("names the failed worker's host and phase where the driver or its error event knows them", () => {
    const boom = {
      code: 'SR_ENTRY_FAILED',
      kind: 'worker',
      rank: 1,
      message: 'Error: boom',
      host: '10.0.0.2',
      phase: 'training',
    };
    expect(driverError(boom, [])).toMatchObject({
      message: 'worker 1 failed: Error: boom (on host 10.0.0.2, during training)',
      detail: { rank: 1, host: '10.0.0.2', phase: 'training' },
    });
    // The first failure came from another rank: its own phase, from its error event; its host is not known here.
    const lost = {
      code: 'SR_PEER_LOST',
      kind: 'worker',
      rank: 1,
      message: 'PeerFailedError: ...',
      host: '10.0.0.2',
      phase: 'training',
    };
    expect(
      driverError(lost, [{ rank: 0, code: 'SR_PHASE_TIMEOUT', message: 'PhaseTimeoutError: ...', phase: 'checkpoint' }]),
    ).toMatchObject({
      message: 'worker 0 failed: PhaseTimeoutError: ... (during checkpoint)',
      detail: { rank: 0, host: undefined, phase: 'checkpoint' },
    });
  });

  it('a lost peer alone is retried; a final code heard from any rank is not', () => {
    const lost = { code: 'SR_PEER_LOST', kind: 'worker', rank: 1, message: 'PeerFailedError: ...' } as const;
    expect(driverError(lost, [{ rank: 1, code: 'SR_PEER_LOST', message: 'PeerFailedError: ...' }])).toMatchObject({
      kind: 'worker',
      message: 'worker 1 failed: PeerFailedError: ...',
      detail: { final: false },
    });
    const heard = [
      { rank: 0, code: 'SR_ENTRY_FAILED', message: 'Error: boom' },
      { rank: 1, code: 'SR_UNEVEN_STEPS', message: 'UnevenStepsError: ...' },
    ];
    expect(driverError(lost, heard)).toMatchObject({ message: 'worker 0 failed: Error: boom', detail: { final: true } });
  });
});
