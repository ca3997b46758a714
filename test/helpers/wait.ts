/**
 * Polling for integration tests: waits until a condition holds, with a deadline and the last
 * observed value in the failure message.
 */

/** Resolves with the first non-undefined value of `probe`, polled every `everyMs`; rejects after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === '' ? '' : ` (last error: ${lastError})`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves once `check` holds, polled every 100 ms; rejects after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await waitFor(what, async () => ((await check()) ? true : undefined), timeoutMs, 100);
}
