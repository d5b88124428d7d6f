import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessages, type NlMessage } from './codec.ts';
import { SysError } from './libc.ts';
import { encodeBatch, sendBatch, type BatchSocket, type NfMessage } from './nfnetlink-batch.ts';

const msg = (object: string): NfMessage => ({ type: 0x0a0c, flags: 0x400, payload: Buffer.from([1, 0, 0, 0]), op: 'NFT_MSG_NEWSETELEM', object });
const ack = (seq: number, errno = 0): NlMessage => {
  const payload = Buffer.alloc(20);
  payload.writeInt32LE(-errno, 0);
  return { type: 2, flags: 0x100, seq, pid: 0, payload };
};

/** A socket whose kernel answers each sent batch with `answer(seqs of the batch)`. */
function fakeSocket(answer: (seqs: number[]) => NlMessage[][]): BatchSocket & { sent: Buffer[] } {
  let seq = 100;
  let queue: NlMessage[][] = [];
  const sent: Buffer[] = [];
  return {
    sent,
    reserveSeq: (n) => ((seq += n), seq - n + 1),
    sendRaw: (buf) => {
      sent.push(buf);
      queue = answer(decodeMessages(buf).map((m) => m.seq));
    },
    receiveRaw: (op, dontWait) => {
      const next = queue.shift();
      if (!next && !dontWait) throw new SysError(11, op, '', 'no reply from the kernel');
      return next;
    },
  };
}

test('encodeBatch frames the messages with BATCH_BEGIN and BATCH_END of the subsystem', () => {
  const m = decodeMessages(encodeBatch(10, [msg('t/a')], 5, true));
  assert.deepEqual(m.map((x) => [x.type, x.seq, x.flags]), [[0x10, 5, 1], [0x0a0c, 6, 0x405], [0x11, 7, 1]]);
  assert.deepEqual([...m[0].payload], [0, 0, 0, 10], 'res_id is the subsystem, big-endian');
});

test('sendBatch returns once every message is acknowledged, in one or several datagrams', () => {
  const sock = fakeSocket((s) => [[ack(s[1])], [ack(s[2])]]);
  sendBatch(sock, 10, [msg('t/a'), msg('t/b')]);
  assert.equal(sock.sent.length, 1);
});

test('sendBatch throws the first refused message with its errno, operation and set', () => {
  const sock = fakeSocket((s) => [[ack(s[1]), ack(s[2], 17), ack(s[3], 2)]]);
  assert.throws(() => sendBatch(sock, 10, [msg('t/a'), msg('t/b'), msg('t/c')]), (err: unknown) => {
    assert.ok(err instanceof SysError);
    assert.equal(err.code, 'EEXIST');
    assert.equal(err.message, 'NFT_MSG_NEWSETELEM t/b: EEXIST');
    return true;
  });
});

test('a batch refused as a whole (answered on BATCH_BEGIN) throws without waiting for more', () => {
  const sock = fakeSocket((s) => [[ack(s[0], 1)]]);
  assert.throws(() => sendBatch(sock, 10, [msg('t/a')]), /EPERM/);
});

test('answers of other requests are ignored; missing answers are an error, not a hang', () => {
  const sock = fakeSocket((s) => [[ack(s[1] + 1000, 2), ack(s[1])]]);
  assert.throws(() => sendBatch(sock, 10, [msg('t/a'), msg('t/b')]), /1 of 2 messages unanswered/);
});
