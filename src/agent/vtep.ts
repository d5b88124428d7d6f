// This node's VTEP MAC: derived from the node's name, so it is the same after an agent restart
// and after the vxlan device is recreated, and peers' FDB entries (made from the published
// annotation) stay right. Locally administered, unicast.
import { createHash } from 'node:crypto';

export function vtepMacOf(nodeName: string): string {
  const b = createHash('sha256').update(`pier-vtep:${nodeName}`).digest().subarray(0, 6);
  // Set the locally administered bit, clear the multicast bit.
  b[0] = (b[0] | 0x02) & 0xfe;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
