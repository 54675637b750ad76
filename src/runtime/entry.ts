/** Loads the user's training module (.ts through tsx, .js/.mjs as is) and checks its shape. */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrainContext } from './context.js';

export type TrainFunction = (ctx: TrainContext) => Promise<unknown> | unknown;

export class EntryError extends Error {
  override readonly name = 'EntryError';
}

let tsxRegistered = false;

export async function loadEntry(path: string): Promise<TrainFunction> {
  if (!existsSync(path)) throw new EntryError(`entry file ${path} does not exist`);
  if (['.ts', '.mts', '.cts', '.tsx'].includes(extname(path)) && !tsxRegistered) {
    const { register } = await import('tsx/esm/api');
    register();
    tsxRegistered = true;
  }
  const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') {
    throw new EntryError(
      `entry ${path} has no default export function; write \`export default async function train(ctx) { ... }\``,
    );
  }
  return mod.default as TrainFunction;
}
