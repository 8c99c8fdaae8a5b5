// Worker side of the cluster-map test: rebuilds the map chain from a spec and translates on request.
import { parentPort, workerData } from 'node:worker_threads';
import { ClusterMap, translateRead, type ClusterMapSpec } from '../../../src/blob/cluster-map.ts';

const map = ClusterMap.fromSpec(workerData as ClusterMapSpec);
parentPort!.on('message', (offsets: number[]) => {
  parentPort!.postMessage(offsets.map((o) => translateRead(map, o)));
});
