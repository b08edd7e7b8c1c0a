// What the browser tests share: Debian's headless Chromium launched for audio pages, and named steps that
// record their outcome for the test's report line.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--mute-audio'],
  });
}

// Returns step(name, fn): runs fn, pushes {name, ok, ms} (or {name, ok: false, error}) to `steps`, rethrows.
export function stepper(steps) {
  return async (name, fn) => {
    const t0 = Date.now();
    try {
      await fn();
      steps.push({ name, ok: true, ms: Date.now() - t0 });
    } catch (e) {
      steps.push({ name, ok: false, error: String(e?.message ?? e) });
      throw e;
    }
  };
}
