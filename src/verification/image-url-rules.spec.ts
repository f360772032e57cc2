import { imageUrlProblem } from './image-url-rules';

describe('image_url rules (SSRF)', () => {
  it.each([
    'https://images.example.com/idcard/360426199101010071.jpg',
    'https://8.8.8.8/card.jpg',
    'https://[2606:4700:4700::1111]/card.jpg',
    'https://cdn.example.cn:8443/a/b.png?sig=x',
  ])('accepts %s', (url) => {
    expect(imageUrlProblem(url)).toBeNull();
  });

  it.each([
    ['http://images.example.com/a.jpg', 'must use https'],
    ['ftp://images.example.com/a.jpg', 'must use https'],
    ['not a url', 'must be an absolute https URL'],
    ['https://user:pw@images.example.com/a.jpg', 'must not carry credentials'],
    ['https://127.0.0.1/a.jpg', 'must not name a loopback address'],
    ['https://2130706433/a.jpg', 'must not name a loopback address'],
    ['https://0x7f.1/a.jpg', 'must not name a loopback address'],
    ['https://10.1.2.3/a.jpg', 'must not name a private address'],
    ['https://172.16.0.1/a.jpg', 'must not name a private address'],
    ['https://192.168.1.1/a.jpg', 'must not name a private address'],
    ['https://169.254.169.254/latest/meta-data', 'must not name a linkLocal address'],
    ['https://[::1]/a.jpg', 'must not name a loopback address'],
    ['https://[fe80::1]/a.jpg', 'must not name a linkLocal address'],
    ['https://[fd00::1]/a.jpg', 'must not name a uniqueLocal address'],
    ['https://[::ffff:127.0.0.1]/a.jpg', 'must not name a loopback address'],
    ['https://0.0.0.0/a.jpg', 'must not name a unspecified address'],
    ['https://203.0.113.10/a.jpg', 'must not name a reserved address'],
    ['https://localhost/a.jpg', 'must name a public host'],
    ['https://metadata.google.internal/a.jpg', 'must name a public host'],
    ['https://printer.local/a.jpg', 'must name a public host'],
    ['https://intranet/a.jpg', 'must name a public host'],
  ])('refuses %s (%s)', (url, problem) => {
    expect(imageUrlProblem(url)).toBe(problem);
  });
});
