import { waitFor } from '../wait';
import { isListening, listensOn } from './ports';
import { ServiceProcess } from './service-process';

/**
 * A private `epmd` (Erlang's port mapper) on 127.0.0.1:`port`, never the machine's on 4369: a
 * child process registered with the reaper, ready once it holds the port itself. Nodes reach it
 * through `ERL_EPMD_PORT`. Rejects (with "address already in use" when another program holds the
 * port) if it exits first.
 */
export async function startEpmd(port: number): Promise<ServiceProcess> {
  const epmd = ServiceProcess.spawn('epmd', 'epmd', [
    '-port',
    String(port),
    '-address',
    '127.0.0.1',
  ]);
  let outcome: 'exited' | 'ready';
  try {
    outcome = await waitFor(
      `epmd on port ${port}`,
      async () => (!epmd.running ? 'exited' : (await listensOn(epmd.pid, port)) && 'ready'),
      { timeout: 10_000 },
    );
  } catch (error) {
    await epmd.stop();
    throw error;
  }
  if (outcome === 'exited') {
    // epmd says why only to syslog; a port that answers is one somebody else took.
    const taken = await isListening(port);
    const why = taken ? `port ${port}: address already in use` : epmd.output();
    throw new Error(`epmd exited at start: ${why}`);
  }
  return epmd;
}
