import { ConfigError } from '../config/environment';
import { clientAddress, limiterSource, normaliseAddress, trustProxySetting } from './client-address';

describe('trustProxySetting', () => {
  it('trusts no proxy by default, and never everything', () => {
    expect(trustProxySetting([])).toBe(false);
    expect(trustProxySetting([' ', ''])).toBe(false);
  });

  it('passes addresses, CIDR ranges and named ranges on to Express', () => {
    expect(trustProxySetting(['loopback'])).toEqual(['loopback']);
    expect(trustProxySetting(['10.0.0.0/8', ' 127.0.0.1', '::1', 'fd00::/8'])).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
      '::1',
      'fd00::/8',
    ]);
  });

  it('refuses what is not an address or range, naming the variable', () => {
    for (const bad of ['999.1.1.1', '10.0.0.0/33', 'proxy.example', '1.2.3', '::/129', 'true', '*']) {
      expect(() => trustProxySetting([bad])).toThrow(ConfigError);
      expect(() => trustProxySetting([bad])).toThrow(/^TRUST_PROXY /);
    }
  });
});

describe('clientAddress', () => {
  it('takes Express req.ip when it is an address, IPv4-mapped shown as IPv4', () => {
    expect(clientAddress({ ip: '203.0.113.9', socket: { remoteAddress: '127.0.0.1' } })).toBe('203.0.113.9');
    expect(clientAddress({ ip: '::ffff:10.1.2.3' })).toBe('10.1.2.3');
    expect(clientAddress({ ip: '2001:db8::1' })).toBe('2001:db8::1');
  });

  it('falls back to the socket when the forwarded value is not an address', () => {
    for (const ip of ['unknown', '110101199003071234', '<script>', '', '1.2.3.4, 5.6.7.8', undefined, 42]) {
      expect(clientAddress({ ip, socket: { remoteAddress: '::ffff:127.0.0.1' } })).toBe('127.0.0.1');
    }
    expect(clientAddress({ ip: 'junk', socket: null })).toBeNull();
  });
});

describe('limiterSource', () => {
  it('counts IPv4 by address and IPv6 by /64', () => {
    expect(limiterSource('203.0.113.9')).toBe('203.0.113.9');
    expect(limiterSource('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(limiterSource('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(limiterSource('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(limiterSource('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(limiterSource('::1')).toBe('0:0:0:0::/64');
    expect(limiterSource(null)).toBe('unknown');
  });

  it('normalises IPv4-mapped addresses only', () => {
    expect(normaliseAddress('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(normaliseAddress('::ffff:abcd')).toBe('::ffff:abcd');
  });
});
