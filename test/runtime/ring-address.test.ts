import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { chooseRingAddress, RingInterfaceError } from '../../src/runtime/ring-address.js';

const nic = (address: string, cidr: string, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo =>
  ({ address, cidr, family, netmask: '', mac: '', internal: false, scopeid: 0 }) as NetworkInterfaceInfo;

const interfaces = {
  lo: [nic('127.0.0.1', '127.0.0.1/8')],
  eth0: [nic('fe80::1', 'fe80::1/64', 'IPv6'), nic('10.213.7.11', '10.213.7.11/24')],
  ib0: [nic('192.168.50.3', '192.168.50.3/16')],
};

describe('the address a rank listens on', () => {
  it("is the executor's own address by default, and the note names the flag", () => {
    const a = chooseRingAddress('10.213.7.11', undefined, interfaces);
    expect(a.host).toBe('10.213.7.11');
    expect(a.note).toMatch(/executor's address \(here 10\.213\.7\.11\); set --ring-interface NAME\|CIDR/);
  });

  it('is the IPv4 address of the interface --ring-interface names', () => {
    expect(chooseRingAddress('h1', 'eth0', interfaces).host).toBe('10.213.7.11');
    expect(chooseRingAddress('h1', 'ib0', interfaces).note).toMatch(/--ring-interface ib0 \(here 192\.168\.50\.3\)/);
  });

  it('is the address in the subnet --ring-interface names', () => {
    expect(chooseRingAddress('h1', '192.168.0.0/16', interfaces).host).toBe('192.168.50.3');
    expect(chooseRingAddress('h1', '10.213.7.0/24', interfaces).host).toBe('10.213.7.11');
  });

  it('refuses an interface or subnet this host lacks, naming the host and what it has', () => {
    expect(() => chooseRingAddress('h1', 'eth9', interfaces)).toThrow(RingInterfaceError);
    expect(() => chooseRingAddress('h1', 'eth9', interfaces)).toThrow(
      /--ring-interface eth9: host h1 has no interface of that name; it has lo \(127\.0\.0\.1\/8\), eth0 \(fe80::1\/64, 10\.213\.7\.11\/24\), ib0/,
    );
    expect(() => chooseRingAddress('h1', '172.16.0.0/12', interfaces)).toThrow(/host h1 has no address in that subnet/);
  });
});
