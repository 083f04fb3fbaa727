import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl, redactUrlsIn } from './redact-url.js';

describe('redactUrl', () => {
  const cases: [string, string, string][] = [
    ['drops user and password', 'http://user:pass@127.0.0.1:9090', 'http://127.0.0.1:9090'],
    ['drops a user alone (it may be a token)', 'https://ghp_abc123@prom.example.com/', 'https://prom.example.com/'],
    ['drops a password holding an @ up to the last @ of the authority', 'http://u:p@ss@127.0.0.1:9090/api', 'http://127.0.0.1:9090/api'],
    ['drops a percent-encoded password', 'http://u:s3cr%40t@host:9090', 'http://host:9090'],
    ['keeps an @ in the path', 'http://127.0.0.1:8000/users/@me', 'http://127.0.0.1:8000/users/@me'],
    ['keeps an @ in the query', 'http://127.0.0.1:8000/ready?mail=a@b.c', 'http://127.0.0.1:8000/ready?mail=a@b.c'],
    ['keeps a URL without credentials exactly as written', 'http://127.0.0.1:9090', 'http://127.0.0.1:9090'],
    ['keeps a graph link as written', 'http://h:9090/graph?g0.expr=sum(rate(x%5B3s%5D))&g0.tab=0', 'http://h:9090/graph?g0.expr=sum(rate(x%5B3s%5D))&g0.tab=0'],
    ['masks ?token=', 'http://127.0.0.1:8000/ready?token=abc&verbose=1', 'http://127.0.0.1:8000/ready?token=redacted&verbose=1'],
    ['masks access_token, api_key, X-Amz-Signature, sig and key', 'https://h/p?access_token=a&api_key=b&X-Amz-Signature=c&sig=d&key=e&keep=f', 'https://h/p?access_token=redacted&api_key=redacted&X-Amz-Signature=redacted&sig=redacted&key=redacted&keep=f'],
    ['masks a secret parameter in the fragment', 'https://h/cb#access_token=abc&state=1', 'https://h/cb#access_token=redacted&state=1'],
    ['masks both userinfo and query', 'http://u:p@h:1/x?password=q', 'http://h:1/x?password=redacted'],
    ['keeps a parameter without a value', 'http://h/x?token&debug', 'http://h/x?token&debug'],
    ['leaves a text that is not a URL alone', 'not a url', 'not a url'],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => assert.equal(redactUrl(input), want));
  }
});

describe('redactUrlsIn', () => {
  it('redacts every URL in a text and keeps the rest', () => {
    assert.equal(
      redactUrlsIn('GET http://user:pw@127.0.0.1:9090/api/v1/query failed; retry "https://h/x?token=t" later'),
      'GET http://127.0.0.1:9090/api/v1/query failed; retry "https://h/x?token=redacted" later',
    );
  });

  it('returns a text without URLs unchanged', () => {
    const text = 'connect ECONNREFUSED 127.0.0.1:9090';
    assert.equal(redactUrlsIn(text), text);
  });
});
