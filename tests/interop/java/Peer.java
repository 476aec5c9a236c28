// An Apache Curator peer for the interop tests (tests/src/interop).
//
//   java Peer <recipe> <connect> <path> <session_ms> hold <wait_ms> <hold_ms>
//   java Peer <recipe> <connect> <path> <session_ms> loop <rounds> <marker> <inside_ms>
//
// Recipes: mutex (InterProcessMutex on <path>).
//
// hold: one acquire bounded by wait_ms (0 = one try); "busy" when it was
// not granted, else holds hold_ms and releases. loop: rounds of acquire
// (unbounded), create <marker> with O_EXCL inside the section ("overlap"
// when it exists: someone else is inside), sleep inside_ms, delete it,
// release.
//
// Lines on stdout (times in microseconds since the Unix epoch):
//   pid <pid>                  the process holding the ZooKeeper session
//   connected <us>
//   acquired <us> <czxid>      the lock node's czxid: the grant's token
//   busy <us>
//   releasing <us>             just before the release call
//   released <us>
//   overlap <us>
//   done <grants>

import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.data.Stat;

public final class Peer {
    /** InterProcessMutex with its held node's path made visible. */
    static final class Mutex extends InterProcessMutex {
        Mutex(CuratorFramework client, String path) {
            super(client, path);
        }

        String node() {
            return getLockPath();
        }
    }

    /** One recipe's lock, as the modes below use it. */
    interface Lock {
        /** Whether it was granted within wait_ms (a negative bound waits forever). */
        boolean acquire(long waitMs) throws Exception;

        /** The grant's token. */
        long token() throws Exception;

        void release() throws Exception;
    }

    static long now() {
        return ChronoUnit.MICROS.between(Instant.EPOCH, Instant.now());
    }

    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static Lock recipe(String name, CuratorFramework client, String path) {
        switch (name) {
            case "mutex": {
                Mutex m = new Mutex(client, path);
                return new Lock() {
                    public boolean acquire(long waitMs) throws Exception {
                        if (waitMs < 0) {
                            m.acquire();
                            return true;
                        }
                        return m.acquire(waitMs, TimeUnit.MILLISECONDS);
                    }

                    public long token() throws Exception {
                        Stat stat = client.checkExists().forPath(m.node());
                        return stat == null ? -1 : stat.getCzxid();
                    }

                    public void release() throws Exception {
                        m.release();
                    }
                };
            }
            default:
                throw new IllegalArgumentException("unknown recipe " + name);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 7) {
            System.err.println("usage: Peer <recipe> <connect> <path> <session_ms> hold <wait_ms> <hold_ms>"
                    + " | loop <rounds> <marker> <inside_ms>");
            System.exit(2);
        }
        String connect = args[1];
        String path = args[2];
        int sessionMs = Integer.parseInt(args[3]);
        String mode = args[4];
        say("pid " + ProcessHandle.current().pid());
        CuratorFramework client =
                CuratorFrameworkFactory.newClient(connect, sessionMs, 5000, new RetryOneTime(100));
        client.start();
        if (!client.blockUntilConnected(20, TimeUnit.SECONDS)) {
            System.err.println("no ZooKeeper connection to " + connect);
            System.exit(1);
        }
        say("connected " + now());
        Lock lock = recipe(args[0], client, path);
        switch (mode) {
            case "hold": {
                long waitMs = Long.parseLong(args[5]);
                long holdMs = Long.parseLong(args[6]);
                if (!lock.acquire(waitMs)) {
                    say("busy " + now());
                    break;
                }
                say("acquired " + now() + " " + lock.token());
                Thread.sleep(holdMs);
                say("releasing " + now());
                lock.release();
                say("released " + now());
                break;
            }
            case "loop": {
                int rounds = Integer.parseInt(args[5]);
                Path marker = Paths.get(args[6]);
                long insideMs = Long.parseLong(args[7]);
                for (int i = 0; i < rounds; i++) {
                    lock.acquire(-1);
                    boolean mine = true;
                    try {
                        Files.createFile(marker);
                    } catch (FileAlreadyExistsException e) {
                        mine = false;
                        say("overlap " + now());
                    }
                    say("acquired " + now() + " " + lock.token());
                    Thread.sleep(insideMs);
                    if (mine) {
                        Files.delete(marker);
                    }
                    say("releasing " + now());
                    lock.release();
                }
                say("done " + rounds);
                break;
            }
            default:
                throw new IllegalArgumentException("unknown mode " + mode);
        }
        client.close();
    }
}
