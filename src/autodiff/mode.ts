// Whether ops record themselves on the tape (grad mode), like torch.no_grad / torch.enable_grad.

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  // The mode covers the synchronous part of fn (like a Python context manager around an await-free block).
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn without recording anything for autodiff. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with recording on (inside a noGrad region, for example). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function setGradEnabled(enabled: boolean): void {
  gradEnabled = enabled;
}
