const t0=performance.now();
await import('./dist/src/runtime/trial.js');
