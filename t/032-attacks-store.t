# Hostile tests of the store (issue 11, finding 7, and the nginx -t half of
# 18): its files truncated, filled with garbage, removed, made unreadable,
# workers killed with SIGKILL until the reader table would be full.  After
# each attack the block checks the state: the workers are the same
# processes (or, after a kill, their replacements), no worker died of a
# signal, every client got 503 JSON while the store was broken (never 401
# or 403), no worker re-created the store, the reader table holds no dead
# process, and the copy of a good store put back is served again with no
# reload.
use lib 't/lib';
use Test::Seadragon;
use File::Copy ();
use File::Temp ();
use POSIX ();

workers(2);
master_on();

our $tool = "$ENV{PWD}/build/seadragon-store";
our $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

plan skip_all => "build/seadragon-store is not built: run make" unless -x $tool;
plan skip_all => "the workers must run as nobody: run as root" if $> != 0;

# the stores live where the workers (nobody) can reach them
our $dir = File::Temp->newdir();
chmod 0755, "$dir" or die $!;

sub tool {
    my ($store, @args) = @_;
    my $out = `'$tool' --store '$store' @args 2>&1`;
    die "seadragon-store @args: $out" if $?;
    chomp $out;
    return $out;
}

# a good store, and a copy of it for each block
tool("$dir/good", 'init');
tool("$dir/good", 'whitelist add 127.0.0.1');
our $key = tool("$dir/good", 'key create editor --source coding');
for my $n (1 .. 12) {
    mkdir "$dir/s$n" or die $!;
    File::Copy::copy("$dir/good/data.mdb", "$dir/s$n/data.mdb") or die $!;
}

# a store in a directory that only root may enter
mkdir "$dir/s8/private" or die $!;
tool("$dir/s8/private/store", 'init');
chmod 0700, "$dir/s8/private" or die $!;

# the configuration's server, and a second one on a reuseport listener
# that spreads connections over both workers
our $locations = <<'_EOC_';
        location /api/admin/ { seadragon_admin ollama auth=nginx; }
        location /api/ {
            seadragon_queue ollama;
            # these blocks count the store's reader slots: the usage
            # writer, which opens the store for writing once a second
            # (and clears dead readers then), is t/041's to attack
            seadragon_usage off;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            add_header X-Pid $pid always;
            add_header X-Source $seadragon_source always;
        }
_EOC_

our $http_config = <<"_EOC_";
    seadragon_store \@STORE\@;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=\$http_x_coding key;
    seadragon_source api    priority=3 whitelist;
    server {
        listen 127.0.0.1:\$TEST_NGINX_SPREAD_PORT reuseport;
$locations
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $store = "$dir/s" . $block->seq_num;
    $block->set_value('main_config', "    user nobody nogroup;\n")
        unless defined $block->main_config;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $locations) unless defined $block->config;
    for my $section (qw(http_config client)) {
        my $text = $block->$section;
        next unless defined $text;
        $text =~ s/\@STORE\@/$store/g;
        $block->set_value($section, $text);
    }
});

# an untagged chat, answered before it returns (not the harness's chat())
sub chat_now {
    my (%headers) = @_;
    return request('POST /api/chat', port => $ENV{TEST_NGINX_SPREAD_PORT},
        body => '{"model":"llama3:70b","messages":[],"stream":false}',
        headers => { 'X-Standin-Tokens' => 1, %headers });
}

# Requests until each worker has answered three: "STATUSES from N workers",
# and for 503 the one body they all had, when every one was JSON.
sub spread {
    my (%seen, %status, %body, $json);
    my $want = scalar nginx_worker_pids();
    $json = 1;
    for (1 .. 300) {
        my $r = chat_now();
        die "no answer: $r->{error}" unless defined $r->{status};
        $seen{ $r->{headers}{'x-pid'} // '-' }++;
        $status{ $r->{status} }++;
        if ($r->{status} != 200) {
            $body{ $r->{body} }++;
            $json = 0 unless ($r->{headers}{'content-type'} // '')
                             eq 'application/json';
        }
        last if keys %seen >= $want && !grep { $_ < 3 } values %seen;
    }
    my $s = join(',', sort keys %status) . ' from ' . (keys %seen)
            . ' workers';
    $s .= ', ' . ($json ? 'JSON ' : 'not JSON ') . join(' | ', sort keys %body)
        if %body;
    return $s;
}

# waits until every worker answers with this status, then reports
sub settle {
    my ($status) = @_;
    wait_until(sub { spread() =~ /^$status from / }, "every answer $status",
               20);
    return spread();
}

# a request with the coding key: its status, and its source when served
sub keyed {
    my $r = chat_now('Authorization' => "Bearer $key", 'X-Coding' => 1);
    return $r->{status} . ($r->{status} == 200
                           ? ' ' . ($r->{headers}{'x-source'} // '-') : '');
}

sub admin_add {
    my ($net) = @_;
    my $r = request('POST /api/admin/whitelist',
                    port => $ENV{TEST_NGINX_SPREAD_PORT},
                    body => json_encode({ address => $net }));
    return $r->{status};
}

sub admin_list {
    my $r = request('GET /api/admin/whitelist',
                    port => $ENV{TEST_NGINX_SPREAD_PORT});
    return $r->{status} == 200
           ? '200 ' . join(',', map { $_->{address} }
                                @{ json_decode($r->{body})->{whitelist} })
           : "$r->{status} $r->{body}";
}

sub pids { join ' ', sort { $a <=> $b } nginx_worker_pids() }

# the reader table: how many slots, and how many of dead processes
sub readers {
    my ($store) = @_;
    my @pids = `mdb_stat -r '$store' 2>&1` =~ /^\s*(\d+)\s+\S+\s+\S+\s*$/mg;
    my $dead = grep { !kill 0, $_ } @pids;
    return scalar(@pids) . ($dead ? ", $dead dead" : ', none dead');
}

sub restore {
    my ($store) = @_;
    File::Copy::copy("$dir/good/data.mdb", "$store/data.mdb") or die $!;
}

sub size { my @st = stat $_[0]; return @st ? $st[7] : 'absent' }

# points the first child of a tree's root (a branch page) at a page past
# the end of data.mdb, and lets both meta pages count that page: a read
# of that child is a SIGBUS, while the lookups of the other children work
sub past_end {
    my ($file, $tree) = @_;
    open my $fh, '+<', $file or die $!;
    binmode $fh;
    my $pages = (-s $file) / 4096;
    my ($root, $txnid) = (0, -1);
    for my $meta (0, 1) {
        seek $fh, $meta * 4096, 0;
        read $fh, my $page, 152;
        my ($r, $t) = (unpack('Q<', substr $page, 128, 8),
                       unpack('Q<', substr $page, 144, 8));
        ($root, $txnid) = ($r, $t) if $t > $txnid;
        seek $fh, $meta * 4096 + 136, 0;
        print $fh pack('Q<', $pages + 100);
    }
    seek $fh, $root * 4096, 0;
    read $fh, my $main, 4096;
    my $lower = unpack('v', substr $main, 12, 2);
    my $sub;
    for my $i (0 .. ($lower - 16) / 2 - 1) {
        my $off = unpack('v', substr $main, 16 + 2 * $i, 2);
        my ($flags, $ksize) = unpack('v v', substr $main, $off + 4, 4);
        my $name = substr $main, $off + 8, $ksize;
        next unless $name eq $tree && ($flags & 0x02);
        $sub = unpack('Q<', substr $main, $off + 8 + $ksize + 40, 8);
    }
    die "no $tree tree" unless defined $sub;
    seek $fh, $sub * 4096, 0;
    read $fh, my $branch, 4096;
    die "the root of $tree is not a branch page"
        unless unpack('v', substr $branch, 10, 2) & 0x01;
    my $off = unpack('v', substr $branch, 16, 2);
    my $pg = $pages + 50;
    seek $fh, $sub * 4096 + $off, 0;
    print $fh pack('v v v', $pg & 0xffff, ($pg >> 16) & 0xffff, $pg >> 32);
    close $fh;
}

run_tests();

__DATA__

=== TEST 1: data.mdb truncated to 0 bytes: 503 JSON from live workers that do not re-create it, then served again once it is copied back
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . spread());
    truncate "$s/data.mdb", 0 or die $!;
    push @out, 'broken: ' . settle(503), 'keyed: ' . keyed(),
        'admin write: ' . admin_add('10.9.0.0/16'),
        'admin list: ' . admin_list(),
        'data.mdb: ' . size("$s/data.mdb"),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no');
    restore($s);
    push @out, 'restored: ' . settle(200), 'keyed: ' . keyed(),
        'admin write: ' . admin_add('10.9.0.0/16'),
        'tool sees it: ' . tool($s, 'whitelist check 10.9.1.1'),
        'admin list: ' . admin_list(),
        'after the write: ' . spread(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
broken: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
keyed: 503
admin write: 503
admin list: 503 {"error":"the store cannot be read"}
data.mdb: 0
same workers: yes
restored: 200 from 2 workers
keyed: 200 coding
admin write: 201
tool sees it: 10.9.1.1 is whitelisted (by 10.9.0.0/16)
admin list: 200 10.9.0.0/16,127.0.0.1
after the write: 200 from 2 workers
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 2: data.mdb removed: 503 JSON, no worker creates a new one, and a copy put back is served
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . spread());
    unlink "$s/data.mdb" or die $!;
    push @out, 'broken: ' . settle(503),
        'admin write: ' . admin_add('10.9.0.0/16'),
        'data.mdb: ' . size("$s/data.mdb"),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no');
    restore($s);
    push @out, 'restored: ' . settle(200), 'keyed: ' . keyed(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
broken: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
admin write: 503
data.mdb: absent
same workers: yes
restored: 200 from 2 workers
keyed: 200 coding
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 3: data.mdb overwritten with garbage of the same size: no worker crashes, every answer is 503 JSON, and the copy put back is served
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . spread());
    my $size = size("$s/data.mdb");
    srand(11);
    open my $fh, '+<', "$s/data.mdb" or die $!;
    print $fh join '', map { chr int rand 256 } 1 .. $size;
    close $fh;
    push @out, 'broken: ' . settle(503), 'keyed: ' . keyed(),
        'admin write: ' . admin_add('10.9.0.0/16'),
        'admin list: ' . admin_list(),
        'size: ' . (size("$s/data.mdb") == $size ? 'unchanged' : 'changed'),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no');
    restore($s);
    push @out, 'restored: ' . settle(200), 'keyed: ' . keyed(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
broken: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
keyed: 503
admin write: 503
admin list: 503 {"error":"the store cannot be read"}
size: unchanged
same workers: yes
restored: 200 from 2 workers
keyed: 200 coding
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 4: a crafted page whose entries point past the end of data.mdb: no worker crashes, every answer is 503 JSON, and the copy put back is served
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . spread());
    # the main database's root page, as the newer of the two meta pages
    # says (LMDB 0.9 on 64 bits: txnid at 144, main root at 128), becomes
    # a leaf page whose 100 entries all lie 65520 bytes into it
    open my $fh, '+<', "$s/data.mdb" or die $!;
    my ($root, $txnid) = (0, -1);
    for my $meta (0, 1) {
        seek $fh, $meta * 4096, 0;
        read $fh, my $page, 152;
        my ($r, $t) = (unpack('Q<', substr $page, 128, 8),
                       unpack('Q<', substr $page, 144, 8));
        ($root, $txnid) = ($r, $t) if $t > $txnid;
    }
    seek $fh, $root * 4096, 0;
    print $fh pack('Q< v v v v', $root, 0, 0x02, 16 + 200, 4096 - 16),
              pack('v', 0xfff0) x 100;
    close $fh;
    push @out, 'broken: ' . settle(503), 'keyed: ' . keyed(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no');
    restore($s);
    push @out, 'restored: ' . settle(200), 'keyed: ' . keyed(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
broken: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
keyed: 503
same workers: yes
restored: 200 from 2 workers
keyed: 200 coding
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 5: chmod 000 on data.mdb, then on the store's directory, and back: 503 JSON while the workers cannot open it, served again after, with no reload
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . spread());
    chmod 0000, "$s/data.mdb" or die $!;
    push @out, 'data.mdb 000: ' . settle(503), 'keyed: ' . keyed();
    chmod 0644, "$s/data.mdb" or die $!;
    push @out, 'data.mdb back: ' . settle(200);
    chmod 0000, $s or die $!;
    push @out, 'directory 000: ' . settle(503);
    chmod 0755, $s or die $!;
    push @out, 'directory back: ' . settle(200), 'keyed: ' . keyed(),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
data.mdb 000: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
keyed: 503
data.mdb back: 200 from 2 workers
directory 000: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
directory back: 200 from 2 workers
keyed: 200 coding
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 6: three workers killed with SIGKILL leave no stale reader: each replacement clears the dead one's slot
--- client
    my $s = '@STORE@';
    my @out = ('before: ' . spread());
    for my $round (1 .. 3) {
        my @old = nginx_worker_pids();
        kill 'KILL', $old[0] or die $!;
        wait_until(sub { my @p = nginx_worker_pids();
                         @p == 2 && !grep { $_ == $old[0] } @p },
                   'a new worker');
        push @out, "after kill $round: " . spread();
    }
    push @out, 'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
after kill 1: 200 from 2 workers
after kill 2: 200 from 2 workers
after kill 3: 200 from 2 workers
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 7: a reader table full of dead processes: nginx -t, the tool and a new worker clear it and go on
--- client
    my $s = '@STORE@';
    my @out = ('before: ' . spread());
    my $stale = "$dir/stale";
    unless (-x $stale) {
        open my $fh, '>', "$stale.c" or die $!;
        print $fh <<'_C_';
#include <lmdb.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* readers that die holding their slot: the number that did */
int
main(int argc, char **argv)
{
    int      i, n, status, dead;
    pid_t    pid;
    MDB_env  *env;
    MDB_txn  *txn;

    n = atoi(argv[2]);
    dead = 0;
    for (i = 0; i < n; i++) {
        pid = fork();
        if (pid == 0) {
            if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8)
                || mdb_env_open(env, argv[1], MDB_RDONLY, 0644)
                || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
            {
                _exit(1);
            }
            raise(SIGKILL);
        }
        waitpid(pid, &status, 0);
        dead += WIFSIGNALED(status);
    }
    return dead > 255 ? 255 : dead;
}
_C_
        close $fh;
        system("cc -o '$stale' '$stale.c' -llmdb") == 0 or die "cc failed";
    }
    system($stale, $s, 200);
    push @out, 'dead readers: ' . ($? >> 8);
    push @out, 'table: ' . readers($s);
    my $conf = servroot() . '/conf/nginx.conf';
    my $t = `'$nginx' -p '@{[ servroot() ]}/' -c '$conf' -t 2>&1`;
    push @out, 'nginx -t: ' . ($? == 0 ? 'ok' : "failed: $t");
    system($stale, $s, 200);
    my $list = `'$tool' --store '$s' whitelist list 2>&1`;
    chomp $list;
    push @out, 'tool: ' . ($? == 0 ? $list : "failed: $list");
    system($stale, $s, 200);
    my @old = nginx_worker_pids();
    kill 'KILL', $old[0] or die $!;
    wait_until(sub { my @p = nginx_worker_pids();
                     @p == 2 && !grep { $_ == $old[0] } @p }, 'a new worker');
    push @out, 'after a kill: ' . spread(), 'table: ' . readers($s);
    join "\n", @out;
--- client_output_like
^before: 200 from 2 workers
dead readers: 12[46]
table: 126, 12[46] dead
nginx -t: ok
tool: 127\.0\.0\.1\t\S+\t
after a kill: 200 from 2 workers
table: 2, none dead$
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 8: nginx -t refuses a store whose directory the workers' user cannot search, naming the directive, the directory and its mode
--- http_config
    seadragon_store @STORE@/private/store;
    seadragon_zone ollama:1m;
    seadragon_source api priority=3 whitelist;
--- config
--- must_die
--- error_log eval
qr{seadragon_store "[^"]+/private/store": nginx workers run as "nobody" \(group "nogroup"\) and cannot search the directory "[^"]+/private" \(mode 0700, owner root:root\)}



=== TEST 9: a good copy put back over a store that changed since, while the workers hold it: they serve the copy's newest state, not the older meta page the lock file's count points to
--- client
    my $s = '@STORE@';
    my $pids = pids();
    my @out = ('before: ' . keyed());
    # one change: the lock file's transaction count is one ahead, so
    # that its parity names the copy's older meta page (before the key)
    tool($s, 'whitelist add 10.8.0.0/16');
    push @out, 'changed: ' . keyed();
    restore($s);
    wait_until(sub { keyed() eq '200 coding' && spread() eq '200 from 2 workers' },
               'the copy served', 20);
    push @out, 'restored: ' . keyed(), 'restored: ' . spread(),
        'tool: ' . tool($s, 'whitelist list') =~ s/\t.*//gr =~ s/\n/,/gr,
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 coding
changed: 200 coding
restored: 200 coding
restored: 200 from 2 workers
tool: 127.0.0.1
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 10: a reload while the workers cannot reach the store is an alert, not the master's exit; the new workers answer 503 JSON and serve once it is reachable
--- client
    my $s = '@STORE@';
    my @out = ('before: ' . spread());
    chmod 0700, $s or die $!;
    push @out, 'closed to nobody: ' . settle(503);
    my $master = nginx_master_pid();
    nginx_reload();
    push @out, 'master after the reload: '
               . (kill(0, $master) && nginx_master_pid() == $master
                  ? 'the same' : 'gone'),
        'after the reload: ' . settle(503);
    chmod 0755, $s or die $!;
    push @out, 'reachable again: ' . settle(200), 'keyed: ' . keyed(),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
closed to nobody: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
master after the reload: the same
after the reload: 503 from 2 workers, JSON {"error":"the gateway cannot check access right now, please try again"}
reachable again: 200 from 2 workers
keyed: 200 coding
readers: 2, none dead
--- error_log eval
qr{\[alert\] .*seadragon_store "[^"]+": nginx workers run as "nobody" \(group "nogroup"\) and cannot search the directory "[^"]+" \(mode 0700, owner root:root\)}
--- no_error_log eval
qr/exited on signal (?!9\b)/



=== TEST 11: a listing of the admin API that walks a page past the end of data.mdb: 503 JSON, no worker crashes, the lookups go on, and the copy put back is listed
--- client
    my $s = '@STORE@';
    for my $i (0 .. 299) {
        tool($s, sprintf 'whitelist add 10.%d.%d.0/24', $i / 200, $i % 200);
    }
    tool($s, "key create k$_ --source coding") for 1 .. 150;
    File::Copy::copy("$s/data.mdb", "$dir/s11.copy") or die $!;
    my $pids = pids();
    my $list = sub {
        my ($what) = @_;
        my %seen;
        for (1 .. 8) {
            my $r = request("GET /api/admin/$what",
                            port => $ENV{TEST_NGINX_SPREAD_PORT});
            $seen{ $r->{status} == 200
                   ? '200 ' . @{ json_decode($r->{body})->{$what} }
                   : "$r->{status} $r->{body}" }++;
        }
        return join ' | ', sort keys %seen;
    };
    my @out = ('before: ' . spread(), 'whitelist: ' . $list->('whitelist'),
               'keys: ' . $list->('keys'));
    past_end("$s/data.mdb", 'whitelist');
    push @out, 'whitelist: ' . $list->('whitelist'), 'after: ' . settle(200),
        'admin write: ' . join(',', map {
            request("DELETE /api/admin/whitelist/10.0.$_.0/24",
                    port => $ENV{TEST_NGINX_SPREAD_PORT})->{status} } 0 .. 3),
        'after: ' . settle(200);
    File::Copy::copy("$dir/s11.copy", "$s/data.mdb") or die $!;
    past_end("$s/data.mdb", 'keys');
    push @out, 'keys: ' . $list->('keys'), 'after: ' . settle(200),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no');
    File::Copy::copy("$dir/s11.copy", "$s/data.mdb") or die $!;
    # both workers have the copy open again (8 listings may all go to one)
    settle(200);
    wait_until(sub { $list->('keys') eq '200 151' }, 'the copy listed', 20);
    push @out, 'restored: ' . $list->('whitelist'), 'keys: ' . $list->('keys'),
        'same workers: ' . (pids() eq $pids ? 'yes' : 'no'),
        'readers: ' . readers($s);
    join "\n", @out;
--- client_output
before: 200 from 2 workers
whitelist: 200 301
keys: 200 151
whitelist: 503 {"error":"the store cannot be read"}
after: 200 from 2 workers
admin write: 503,503,503,503
after: 200 from 2 workers
keys: 503 {"error":"the store cannot be read"}
after: 200 from 2 workers
same workers: yes
restored: 200 301
keys: 200 151
same workers: yes
readers: 2, none dead
--- no_error_log eval
qr/exited on signal (?!9\b)/
