/**
 * The address a rank's ring server listens on and advertises: the executor's own address (as
 * Spark knows the executor's host), or the interface or subnet named by --ring-interface, as
 * NCCL_SOCKET_IFNAME and HOROVOD_GLOO_IFACE choose. Never a wildcard.
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export const RING_INTERFACE_FLAG = '--ring-interface NAME|CIDR';

/** --ring-interface names no interface or subnet of this host. Final: another attempt would not help. */
export class RingInterfaceError extends Error {
  override readonly name = 'RingInterfaceError';
  readonly code = 'SR_RING_INTERFACE';
}

export interface RingAddress {
  host: string;
  /** For the formation error: how the address was chosen and the flag that changes it. */
  note: string;
}

type Interfaces = ReturnType<typeof networkInterfaces>;

function describeInterfaces(interfaces: Interfaces): string {
  return Object.entries(interfaces)
    .map(([name, addrs]) => `${name} (${(addrs ?? []).map((a) => a.cidr ?? a.address).join(', ')})`)
    .join(', ');
}

/** An address of this host on the interface `name`, or in the subnet `cidr` (a.b.c.d/n). */
function fromInterface(choice: string, interfaces: Interfaces, hostName: string): string {
  const slash = choice.indexOf('/');
  if (slash > 0 && isIP(choice.slice(0, slash))) {
    const base = choice.slice(0, slash);
    const family = isIP(base) === 6 ? 'ipv6' : 'ipv4';
    const subnet = new BlockList();
    subnet.addSubnet(base, Number(choice.slice(slash + 1)), family);
    for (const addrs of Object.values(interfaces)) {
      for (const a of addrs ?? []) {
        if (a.family.toLowerCase() === family && subnet.check(a.address, family)) return a.address;
      }
    }
    throw new RingInterfaceError(
      `--ring-interface ${choice}: host ${hostName} has no address in that subnet; it has ${describeInterfaces(interfaces)}. Name a subnet or interface every executor host has`,
    );
  }
  const addrs = interfaces[choice];
  if (!addrs || addrs.length === 0) {
    throw new RingInterfaceError(
      `--ring-interface ${choice}: host ${hostName} has no interface of that name; it has ${describeInterfaces(interfaces)}`,
    );
  }
  const v4 = addrs.find((a) => a.family === 'IPv4') ?? addrs[0];
  return (v4 as { address: string }).address;
}

export function chooseRingAddress(
  executorHost: string,
  ringInterface: string | null | undefined,
  interfaces: Interfaces = networkInterfaces(),
): RingAddress {
  if (ringInterface) {
    const host = fromInterface(ringInterface, interfaces, executorHost);
    return {
      host,
      note: `ranks listen on --ring-interface ${ringInterface} (here ${host}); set ${RING_INTERFACE_FLAG} to an interface or subnet the other hosts reach`,
    };
  }
  return {
    host: executorHost,
    note: `ranks listen on their executor's address (here ${executorHost}); set ${RING_INTERFACE_FLAG} to choose an interface or subnet the other hosts reach`,
  };
}
