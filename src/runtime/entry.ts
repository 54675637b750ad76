/**
 * Loads the user's training module, as the client compiled it (client/submission/entry-compile.ts: one ES
 * module with an inline source map), and checks its shape.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { TrainContext } from './context.js';

export type TrainFunction = (ctx: TrainContext) => Promise<unknown> | unknown;

export class EntryError extends Error {
  override readonly name = 'EntryError';
  readonly code = 'SR_ENTRY_LOAD';
}

export async function loadEntry(path: string): Promise<TrainFunction> {
  if (!existsSync(path)) throw new EntryError(`entry file ${path} does not exist`);
  // Stacks from the entry name the user's file:line, not the compiled module's.
  process.setSourceMapsEnabled(true);
  const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') {
    throw new EntryError(
      `entry ${path} has no default export function; write \`export default async function train(ctx) { ... }\``,
    );
  }
  return mod.default as TrainFunction;
}
