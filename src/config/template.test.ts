import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkTemplate, escapePromqlString, renderTemplate, type TemplateValues } from './template.js';

const VALID = '{{service}}, {{container}}, {{image}}, {{version}}, {{task}}, {{slot}}, {{node}}, {{node_addr}}';
const outsideQuotes = (name: string): string =>
  `{{${name}}} must stand inside a double-quoted label value, e.g. service="{{${name}}}"`;

describe('checkTemplate', () => {
  const cases: [what: string, query: string, problems: string[]][] = [
    ['accepts a placeholder inside a double-quoted label value', 'up{service="{{service}}"}', []],
    ['accepts every known placeholder', 'up{s="{{service}}",c="{{container}}",i="{{image}}",v="{{version}}"}', []],
    ['accepts spaces inside the braces', 'up{service="{{ service }}"}', []],
    ['accepts a placeholder after an escaped quote in the same string', 'up{a="x\\"{{image}}"}', []],
    ['accepts a query without placeholders', 'up{job="web"}', []],
    ['rejects an unknown placeholder, listing the valid ones', 'up{a="{{nope}}"}', [`unknown placeholder {{nope}}; valid: ${VALID}`]],
    ['rejects a placeholder inside single quotes', "up{service='{{service}}'}", [outsideQuotes('service')]],
    ['rejects a placeholder inside backticks', 'up{service=`{{version}}`}', [outsideQuotes('version')]],
    ['rejects a bare placeholder', 'up{service={{service}}}', [outsideQuotes('service')]],
    ['rejects a placeholder after a closed string', 'up{a="{{container}}"} + {{image}}', [outsideQuotes('image')]],
    [
      'reports every problem in the query',
      `up{a={{service}}, b='{{image}}', c="{{nope}}"}`,
      [outsideQuotes('service'), outsideQuotes('image'), `unknown placeholder {{nope}}; valid: ${VALID}`],
    ],
  ];
  for (const [what, query, problems] of cases) {
    it(what, () => {
      assert.deepEqual(checkTemplate(query), problems);
    });
  }
});

describe('escapePromqlString', () => {
  const cases: [what: string, value: string, escaped: string][] = [
    ['leaves a plain value alone', 'himalytix-web', 'himalytix-web'],
    ['escapes a double quote', 'a"b', 'a\\"b'],
    ['escapes a backslash', 'a\\b', 'a\\\\b'],
    ['escapes a newline', 'a\nb', 'a\\nb'],
    ['escapes a carriage return', 'a\rb', 'a\\rb'],
    ['escapes a tab', 'a\tb', 'a\\tb'],
    ['escapes a backslash before a quote so neither can end the string', 'a\\"b', 'a\\\\\\"b'],
  ];
  for (const [what, value, escaped] of cases) {
    it(what, () => {
      assert.equal(escapePromqlString(value), escaped);
    });
  }
});

describe('renderTemplate', () => {
  const values: TemplateValues = { service: 'web', container: 'himalytix-web', image: 'himalytix/web', version: '1.4.2' };

  it('substitutes every placeholder, with or without spaces inside the braces', () => {
    assert.equal(
      renderTemplate('up{s="{{service}}",c="{{ container }}",i="{{image}}",v="{{version}}",again="{{service}}"}', values),
      'up{s="web",c="himalytix-web",i="himalytix/web",v="1.4.2",again="web"}',
    );
  });

  it('keeps a hostile value inside its string', () => {
    const hostile = { ...values, service: 'web"} or vector(1) #' };
    assert.equal(
      renderTemplate('sum(rate(http_requests_total{service="{{service}}"}[1m]))', hostile),
      'sum(rate(http_requests_total{service="web\\"} or vector(1) #"}[1m]))',
    );
  });

  it('escapes a trailing backslash so it cannot swallow the closing quote', () => {
    assert.equal(renderTemplate('up{service="{{service}}"}', { ...values, service: 'web\\' }), 'up{service="web\\\\"}');
  });

  it('escapes newlines in a value', () => {
    assert.equal(renderTemplate('up{version="{{version}}"}', { ...values, version: '1\n} or up{' }), 'up{version="1\\n} or up{"}');
  });

  it('leaves an unknown placeholder untouched', () => {
    assert.equal(renderTemplate('up{a="{{nope}}"}', values), 'up{a="{{nope}}"}');
  });

  it(
    'leaves a placeholder named after an Object.prototype member untouched',
    () => {
      assert.equal(renderTemplate('up{a="{{toString}}"}', values), 'up{a="{{toString}}"}');
    },
  );
});
