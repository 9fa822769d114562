// The resolve hook of loaded-modules.ts.
import { appendFileSync } from 'node:fs';

let file: string | undefined;

export function initialize(data: string | undefined): void {
  file = data;
}

type Resolved = { url: string };
export async function resolve(specifier: string, context: unknown, next: (specifier: string, context: unknown) => Promise<Resolved>): Promise<Resolved> {
  const resolved = await next(specifier, context);
  if (file) appendFileSync(file, resolved.url + '\n');
  return resolved;
}
