import test from 'ava';
import { findUrlProblem, isPrivateAddress } from '../../webhooks/url-safety.ts';

test('when an address is private, loopback, link-local or otherwise internal, then it is recognised as such', (t) => {
  for (const a of [
    '10.0.0.1',
    '127.0.0.1',
    '169.254.169.254',
    '172.16.5.4',
    '192.168.1.1',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
  ]) {
    t.true(isPrivateAddress(a), a);
  }
  for (const a of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111'])
    t.false(isPrivateAddress(a), a);
});

test('when private URLs are not allowed, then URLs to internal hosts are refused, however the address is spelled', async (t) => {
  for (const url of [
    'http://127.0.0.1:3000/hook',
    'http://2130706433/hook',
    'http://0x7f.1/hook',
    'http://[::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://169.254.169.254/latest/meta-data',
    'https://10.1.2.3/hook',
    'http://localhost:8080/hook',
    'http://api.localhost/hook',
  ]) {
    t.truthy(await findUrlProblem(url, { allowPrivate: false }), url);
  }
  t.is(await findUrlProblem('https://93.184.215.14/hook', { allowPrivate: false }), undefined);
});

test('when private URLs are allowed, then loopback is accepted but other schemes and credentials still are not', async (t) => {
  t.is(await findUrlProblem('http://127.0.0.1:3000/hook', { allowPrivate: true }), undefined);
  t.regex((await findUrlProblem('ftp://93.184.215.14/x', { allowPrivate: true }))!, /http or https/);
  t.regex((await findUrlProblem('https://user:pw@93.184.215.14/x', { allowPrivate: true }))!, /password/);
  t.regex((await findUrlProblem('not a url', { allowPrivate: true }))!, /absolute/);
});
