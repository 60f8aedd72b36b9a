// Errors of the communication layer. Each one names the rank involved so that a failure on one
// rank can be traced to its cause on another.

export class DistError extends Error {
  override name = 'DistError';
}

/** A peer died, closed its process group, or its connection broke. */
export class PeerLostError extends DistError {
  override name = 'PeerLostError';
  constructor(
    readonly lostRank: number,
    readonly reason: string,
  ) {
    super(
      `rank ${lostRank} was lost (${reason}); the process group cannot be used any more: ` +
        'destroy it and start the job again',
    );
  }
}

/** An operation did not complete before its deadline. */
export class DistTimeoutError extends DistError {
  override name = 'DistTimeoutError';
  constructor(
    readonly waitingFor: number,
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(
      `${operation} timed out after ${timeoutMs} ms waiting for rank ${waitingFor} ` +
        '(it may have died, hung, or called a different collective); raise timeoutMs if it is just slow',
    );
  }
}

/** The group was shut down with destroy()/close(). */
export class GroupClosedError extends DistError {
  override name = 'GroupClosedError';
}
