import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { allowedImageUrlPorts, setAllowedImageUrlPorts } from './image-url-ports';
import { checkImageUrl, imageUrlProblem, IsPublicImageUrl } from './image-url-rules';

describe('image_url rules (SSRF)', () => {
  it.each([
    [
      'https://images.example.com/idcard/360426199101010071.jpg',
      'https://images.example.com/idcard/360426199101010071.jpg',
    ],
    ['https://8.8.8.8/card.jpg', 'https://8.8.8.8/card.jpg'],
    ['https://[2606:4700:4700::1111]/card.jpg', 'https://[2606:4700:4700::1111]/card.jpg'],
    ['HTTPS://Images.Example.COM/a.jpg', 'https://images.example.com/a.jpg'],
    ['https://images.example.com./a.jpg', 'https://images.example.com/a.jpg'],
    ['https://images。example。com/a.jpg', 'https://images.example.com/a.jpg'],
    ['https://ｉｍａｇｅｓ．example.com/a.jpg', 'https://images.example.com/a.jpg'],
    ['https://中文.com/照片1.jpg', 'https://xn--fiq228c.com/%E7%85%A7%E7%89%871.jpg'],
    ['https://img.example.com:443/a.jpg', 'https://img.example.com/a.jpg'],
    ['https://img.example.com/a.jpg?sig=x#frag', 'https://img.example.com/a.jpg?sig=x'],
    ['https://img.example.com/@internal/a.jpg', 'https://img.example.com/@internal/a.jpg'],
    ['https://img.example.com/a%20b.jpg', 'https://img.example.com/a%20b.jpg'],
    ['https://ex%2eample%2ecom/a.jpg', 'https://ex.ample.com/a.jpg'],
  ])('accepts %j as %j (the href that is forwarded)', (url, href) => {
    expect(checkImageUrl(url)).toEqual({ ok: true, href });
  });

  it('gives an href that checks as itself (idempotent)', () => {
    for (const url of ['https://images。example。com./a.jpg#x', 'https://中文.com/照片.jpg']) {
      const first = checkImageUrl(url);
      expect(first.ok).toBe(true);
      if (first.ok) expect(checkImageUrl(first.href)).toEqual(first);
    }
  });

  describe('refuses, naming the reason (never the value)', () => {
    it.each([
      // scheme, shape, credentials
      ['http://images.example.com/a.jpg', 'must use https'],
      ['ftp://images.example.com/a.jpg', 'must use https'],
      ['not a url', 'must not contain spaces, control characters or backslashes'],
      ['images.example.com/a.jpg', 'must be an absolute https URL'],
      ['https:images.example.com/a.jpg', 'must be an absolute https URL'],
      ['https:/images.example.com/a.jpg', 'must be an absolute https URL'],
      ['https:///images.example.com/a.jpg', 'must be an absolute https URL'],
      ['https://user:pw@images.example.com/a.jpg', 'must not carry credentials'],
      ['https://@images.example.com/a.jpg', 'must not carry credentials'],
      ['https://a@b@images.example.com/a.jpg', 'must not carry credentials'],
      ['https://images.example.com%2F@169.254.169.254/a', 'must not carry credentials'],
      // raw strings another parser reads differently
      ['https://evil.example.com\\@internal/a.jpg', 'must not contain spaces, control characters or backslashes'],
      ['https://evil.example.com\\\\127.0.0.1/a.jpg', 'must not contain spaces, control characters or backslashes'],
      ['https://local\thost/a.jpg', 'must not contain spaces, control characters or backslashes'],
      ['https://127.0.0.1\n.example.com/a.jpg', 'must not contain spaces, control characters or backslashes'],
      [' https://images.example.com/a.jpg', 'must not contain spaces, control characters or backslashes'],
      ['https://images.example.com/a.jpg\u0000', 'must not contain spaces, control characters or backslashes'],
      // ports
      ['https://cdn.example.cn:8443/a/b.png', 'must use port 443'],
      ['https://cdn.example.cn:80/a/b.png', 'must use port 443'],
      ['https://cdn.example.cn:22/a/b.png', 'must use port 443'],
      ['https://cdn.example.cn:0/a/b.png', 'must use port 443'],
      // IPv4, every spelling
      ['https://127.0.0.1/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://127.1/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://2130706433/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://0x7f.1/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://0x7f000001/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://0177.0.0.1/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://017700000001/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://127.0.0.1./a.jpg', 'must name a public address (this one is loopback)'],
      ['https://%31%32%37.0.0.1/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://１２７．０．０．１/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://10.1.2.3/a.jpg', 'must name a public address (this one is private)'],
      ['https://172.16.0.1/a.jpg', 'must name a public address (this one is private)'],
      ['https://172.31.255.255/a.jpg', 'must name a public address (this one is private)'],
      ['https://192.168.1.1/a.jpg', 'must name a public address (this one is private)'],
      ['https://169.254.169.254/latest/meta-data', 'must name a public address (this one is link-local)'],
      ['https://0.0.0.0/a.jpg', 'must name a public address (this one is unspecified ("this network"))'],
      ['https://0/a.jpg', 'must name a public address (this one is unspecified ("this network"))'],
      ['https://255.255.255.255/a.jpg', 'must name a public address (this one is broadcast)'],
      ['https://100.64.0.1/a.jpg', 'must name a public address (this one is shared (carrier-grade NAT))'],
      ['https://100.100.100.200/a.jpg', 'must name a public address (this one is shared (carrier-grade NAT))'],
      ['https://198.18.0.1/a.jpg', 'must name a public address (this one is benchmarking)'],
      ['https://198.19.255.255/a.jpg', 'must name a public address (this one is benchmarking)'],
      ['https://224.0.0.1/a.jpg', 'must name a public address (this one is multicast)'],
      ['https://239.255.255.250/a.jpg', 'must name a public address (this one is multicast)'],
      ['https://240.0.0.1/a.jpg', 'must name a public address (this one is reserved)'],
      ['https://192.0.0.170/a.jpg', 'must name a public address (this one is IETF protocol assignment)'],
      ['https://192.0.2.1/a.jpg', 'must name a public address (this one is documentation)'],
      ['https://203.0.113.10/a.jpg', 'must name a public address (this one is documentation)'],
      ['https://192.88.99.1/a.jpg', 'must name a public address (this one is 6to4 relay)'],
      // IPv6
      ['https://[::1]/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://[0:0:0:0:0:0:0:1]/a.jpg', 'must name a public address (this one is loopback)'],
      ['https://[::]/a.jpg', 'must name a public address (this one is unspecified)'],
      ['https://[fe80::1]/a.jpg', 'must name a public address (this one is link-local)'],
      ['https://[fe80::1%25eth0]/a.jpg', 'must be an absolute https URL'],
      ['https://[fd00::1]/a.jpg', 'must name a public address (this one is unique-local)'],
      ['https://[fec0::1]/a.jpg', 'must name a public address (this one is site-local)'],
      ['https://[ff02::1]/a.jpg', 'must name a public address (this one is multicast)'],
      ['https://[100::1]/a.jpg', 'must name a public address (this one is discard-only)'],
      ['https://[2001:db8::1]/a.jpg', 'must name a public address (this one is documentation)'],
      ['https://[2001:2::1]/a.jpg', 'must name a public address (this one is IETF protocol assignment)'],
      ['https://[4000::1]/a.jpg', 'must name a public address (this one is reserved)'],
      ['https://[::ffff:127.0.0.1]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (IPv4-mapped)'],
      ['https://[::ffff:8.8.8.8]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (IPv4-mapped)'],
      ['https://[::127.0.0.1]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (IPv4-compatible)'],
      [
        'https://[::ffff:0:a9fe:a9fe]/a.jpg',
        'must not name an IPv6 address that carries an IPv4 one (IPv4-translated)',
      ],
      ['https://[64:ff9b::127.0.0.1]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (NAT64)'],
      ['https://[64:ff9b:1::a00:1]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (NAT64)'],
      ['https://[2002:7f00:1::]/a.jpg', 'must not name an IPv6 address that carries an IPv4 one (6to4)'],
      [
        'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.jpg',
        'must not name an IPv6 address that carries an IPv4 one (Teredo)',
      ],
      // names
      ['https://localhost/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://localhost./a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://LOCALHOST。/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://%6c%6fcalhost/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://local\u00adhost/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://intranet/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://metadata/a.jpg', 'must name a public host (a fully qualified name)'],
      ['https://localhost../a.jpg', 'must name a valid host'],
      ['https://a..example.com/a.jpg', 'must name a valid host'],
      ['https://.example.com/a.jpg', 'must name a valid host'],
      ['https://a*b.example.com/a.jpg', 'must name a valid host'],
      ['https://-a.example.com/a.jpg', 'must name a valid host'],
      [`https://${'a'.repeat(64)}.example.com/a.jpg`, 'must name a valid host'],
      ['https://app.localhost/a.jpg', 'must name a public host, not one of a private network'],
      ['https://metadata.google.internal/a.jpg', 'must name a public host, not one of a private network'],
      ['https://metadata.google.internal./a.jpg', 'must name a public host, not one of a private network'],
      ['https://METADATA.GOOGLE.INTERNAL。/a.jpg', 'must name a public host, not one of a private network'],
      ['https://metadata.goog/a.jpg', 'must name a public host, not one of a private network'],
      ['https://instance-data.ec2.internal/a.jpg', 'must name a public host, not one of a private network'],
      ['https://host.docker.internal/a.jpg', 'must name a public host, not one of a private network'],
      ['https://printer.local/a.jpg', 'must name a public host, not one of a private network'],
      ['https://db.localdomain/a.jpg', 'must name a public host, not one of a private network'],
      ['https://nas.lan/a.jpg', 'must name a public host, not one of a private network'],
      ['https://router.home/a.jpg', 'must name a public host, not one of a private network'],
      ['https://nas.home.arpa/a.jpg', 'must name a public host, not one of a private network'],
      ['https://1.0.0.127.in-addr.arpa/a.jpg', 'must name a public host, not one of a private network'],
      ['https://wiki.corp/a.jpg', 'must name a public host, not one of a private network'],
      ['https://files.intranet/a.jpg', 'must name a public host, not one of a private network'],
      ['https://redis.default.svc/a.jpg', 'must name a public host, not one of a private network'],
      ['https://redis.default.svc./a.jpg', 'must name a public host, not one of a private network'],
      ['https://redis.default.svc.cluster.local/a.jpg', 'must name a public host, not one of a private network'],
      ['https://kubernetes.default/a.jpg', 'must name a public host, not one of a private network'],
      ['https://vault.service.consul/a.jpg', 'must name a public host, not one of a private network'],
      ['https://gcp.metadata/a.jpg', 'must name a public host, not one of a private network'],
      ['https://xn--localhost-.example/a.jpg', 'must name a valid host'],
      ['https://app.xn--localhost-/a.jpg', 'must name a valid host'],
    ])('%j (%s)', (url, problem) => {
      expect(imageUrlProblem(url)).toBe(problem);
    });
  });

  it('allows the configured ports only', () => {
    expect(imageUrlProblem('https://cdn.example.cn:8443/a.png', [443, 8443])).toBeNull();
    expect(imageUrlProblem('https://cdn.example.cn/a.png', [443, 8443])).toBeNull();
    expect(imageUrlProblem('https://cdn.example.cn/a.png', [8443])).toBe('must use port 8443');
    expect(imageUrlProblem('https://cdn.example.cn:444/a.png', [443, 8443])).toBe('must use port 443 or 8443');
  });

  it('reads the module-level setting, 443 until the app sets it', () => {
    expect(allowedImageUrlPorts()).toEqual([443]);
    try {
      setAllowedImageUrlPorts([8443]);
      expect(imageUrlProblem('https://cdn.example.cn:8443/a.png')).toBeNull();
      expect(imageUrlProblem('https://cdn.example.cn/a.png')).toBe('must use port 8443');
      setAllowedImageUrlPorts([]);
      expect(allowedImageUrlPorts()).toEqual([443]);
    } finally {
      setAllowedImageUrlPorts([443]);
    }
  });

  describe('IsPublicImageUrl', () => {
    class Body {
      @IsPublicImageUrl()
      image_url!: string;
    }
    const read = (image_url: unknown) => {
      const body = plainToInstance(Body, { image_url });
      return { value: body.image_url, errors: validateSync(body).flatMap((e) => Object.values(e.constraints ?? {})) };
    };

    it('replaces an accepted value by the href it checked', () => {
      expect(read('https://IMAGES.example.com。/照片.jpg#x')).toEqual({
        value: 'https://images.example.com/%E7%85%A7%E7%89%87.jpg',
        errors: [],
      });
    });

    it('leaves a refused value as sent and names the problem', () => {
      expect(read('https://evil.example.com\\@internal/a')).toEqual({
        value: 'https://evil.example.com\\@internal/a',
        errors: ['must not contain spaces, control characters or backslashes'],
      });
      expect(read(42).errors).toEqual(['must be a string']);
    });

    it('refuses a value that reaches the validator without its normalisation', () => {
      const body = new Body();
      body.image_url = 'https://IMAGES.example.com/a.jpg';
      expect(validateSync(body).flatMap((e) => Object.values(e.constraints ?? {}))).toEqual([
        'must be given in its normalised form',
      ]);
    });
  });
});
