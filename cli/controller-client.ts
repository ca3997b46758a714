/**
 * The controller's gRPC client for the commands that talk to it. gRPC and protobuf load here,
 * on first use, so `--help` and the offline commands never pay for them.
 */
import type { ControllerClient } from '../proto/index.js';
import type { CtlContext } from './command.js';

/** A node as the controller reports it. */
export type NodeView = Awaited<ReturnType<ControllerClient['getNode']>>;
/** One trust transition from the audit stream. */
export type TrustEventView = Awaited<ReturnType<ControllerClient['history']>>[number];
/** Where an app's allocations run. */
export type AppStatusView = Awaited<ReturnType<ControllerClient['appStatus']>>;
/** A stored policy with its digest and assignments. */
export type PolicyInfoView = Awaited<ReturnType<ControllerClient['putPolicy']>>;

/** Runs `fn` with a client of the controller (--controller / $BULWARK_CONTROLLER), closed afterwards. */
export async function withController<T>(ctx: CtlContext, fn: (client: ControllerClient) => Promise<T>): Promise<T> {
  const proto = await import('../proto/index.js');
  const client = new proto.ControllerClient(ctx.controllerAddress());
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
