// Random hex for names that only need to differ (temp files, host veth names), not to be secret:
// Math.random, which V8 seeds per process from the OS, also in the startup snapshot. The first
// crypto.randomBytes of a process initialises OpenSSL's generator, ~0.13 ms of every plugin run.

/** `n` random hex characters (n <= 13 per call is plenty for Pier's names). */
export function randomHex(n: number): string {
  let out = '';
  while (out.length < n) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, n);
}
