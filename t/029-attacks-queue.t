# Attacks on the queue (issue 11, findings 6 and 10): a worker killed with
# SIGKILL while its requests fill the line must not lock the queue, its
# requests must be counted, and one client (an address, or a key) must not
# be able to take every place in line.  Each block checks the state after
# the attack: the queue, the counters, the worker pids and the error log.
use lib 't/lib';
use Test::Seadragon;
use POSIX ();

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

store_init();
sub tool { store_tool(@_) }
our $ops = tool('key create ops --source admin');
our $alice = tool('key create alice --source coding');
our $bob = tool('key create bob --source coding');
# two keys whose names of 63 characters differ only in their last three
our $long1 = tool('key create ' . ('n' x 60) . '-01 --source coding');
our $long2 = tool('key create ' . ('n' x 60) . '-02 --source coding');
tool('whitelist add 127.0.0.1');

master_on();

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1 max_queued=20 tick=50ms;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;

    # reuseport spreads connections over the workers
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
    }
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

our $body = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}';

# chat($tag, port => P, key => K): the harness's, not streamed, one token
chat_defaults(body => $body, 'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);

sub alive { kill 0, shift }

# "yes", or what does not add up: received = served + upstream errors +
# rejected + aborted, for every source
sub adds_up {
    my $s = shift // admin_stats();
    my @bad;
    for my $name (sort keys %$s) {
        my $c = $s->{$name};
        my $rej = 0; $rej += $_ for values %{ $c->{rejected} };
        my $abo = 0; $abo += $_ for values %{ $c->{aborted} };
        my $sum = $c->{served} + $c->{upstream_errors} + $rej + $abo;
        push @bad, "$name: received $c->{received}, accounted $sum"
            if $sum != $c->{received};
    }
    return @bad ? "no: @bad" : 'yes';
}

# parks requests until the queue holds $n of them; returns the handles
sub park {
    my ($n, $tag, %h) = @_;
    my $before = admin_queue()->{queue_length};
    my @h;
    for my $i (1 .. $n) {
        push @h, chat("$tag$i", %h);
        wait_until(sub { admin_queue()->{queue_length} == $before + $i }, "$tag$i to park");
    }
    return @h;
}


# the new worker, once the master has replaced $victim
sub respawned {
    my ($victim, $n) = @_;
    my @w;
    wait_until(sub { @w = grep { $_ != $victim } nginx_worker_pids(); @w >= ($n // 1) },
               'a new worker', 10);
    return @w;
}

# adds_up() once the last requests' ends are counted (a worker counts a
# request when it frees it, just after its client has the last byte)
sub settled {
    eval { wait_until(sub { adds_up() eq 'yes' }, 'the counters to add up', 5) };
    return adds_up();
}

sub reclaimed {
    my $victim = shift;
    my ($n, $r) = error_log_text() =~ /seadragon reclaimed (\d+) entries of zone "ollama" left by the worker process $victim, which is gone; (\d+) of its requests are counted as aborted/;
    return defined $n ? "$n entries, $r requests" : 'nothing';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: SIGKILL of the only worker while 20 requests fill the line: the new worker reaps them, serves at once, and the counters add up
--- timeout: 40
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
    my $hold = hold_gate();
    my @h = park(20, 'api');
    my $full = wait_request(chat('over'));
    my ($victim) = nginx_worker_pids();
    kill 'KILL', $victim or die "kill $victim: $!";
    my ($worker) = respawned($victim);
    my @gone = wait_all($hold, @h);
    standin_release();
    my $coding = wait_request(chat('coding', key => $alice));
    my $api = wait_request(chat('api'));
    my $q = admin_queue();
    my $s = admin_stats();
    join "\n",
        "full before: $full->{status} $full->{body}",
        "clients of the dead worker answered: " . scalar(grep { $_->{status} } @gone),
        "keyed coding after: $coding->{status}",
        "keyless api after: $api->{status}",
        "queue: $q->{queue_length} waiting, $q->{processing} running",
        "new worker: " . ($worker != $victim && alive($worker) ? 'alive, another pid' : 'no'),
        "old worker alive: " . (alive($victim) ? 'yes' : 'no'),
        "reclaimed: " . reclaimed($victim),
        "reaped: api $s->{api}{aborted}{reaped}, coding $s->{coding}{aborted}{reaped}",
        "received: api $s->{api}{received}, coding $s->{coding}{received}",
        "adds up: " . settled();
--- client_output
full before: 503 {"error":"server busy, please try again.  maximum pending requests exceeded"}
clients of the dead worker answered: 0
keyed coding after: 200
keyless api after: 200
queue: 0 waiting, 0 running
new worker: alive, another pid
old worker alive: no
reclaimed: 21 entries, 21 requests
reaped: api 21, coding 0
received: api 23, coding 1
adds up: yes



=== TEST 2: two workers, no traffic: the survivor's tick alone reaps a dead worker's entries (a zombie, while the master is stopped), and the counters add up
--- workers: 2
--- timeout: 60
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    my $hold = hold_gate(port => $spread);
    my $holder = admin_queue()->{running}[0]{worker};
    # park in the other worker only: what lands in the holder leaves again
    my (@h, @left);
    for my $i (1 .. 80) {
        my $h = chat("api$i", port => $spread);
        my $n = @h + 1;
        wait_until(sub { admin_queue()->{queue_length} == $n }, "api$i to park");
        my ($e) = grep { $_->{id} == (sort { $b <=> $a } map { $_->{id} } @{ admin_queue()->{entries} })[0] } @{ admin_queue()->{entries} };
        if ($e->{worker} == $holder) {
            push @left, abort_request($h);
            wait_until(sub { admin_queue()->{queue_length} == @h }, "api$i to leave");
        } else {
            push @h, $h;
        }
        last if @h == 5;
    }
    die "no connection reached the other worker" unless @h == 5;
    my ($victim) = map { $_->{worker} } @{ admin_queue()->{entries} };
    my $master = nginx_master_pid();
    kill 'STOP', $master;
    kill 'KILL', $victim;
    # a connection that the kernel handed to the dying worker waits, with
    # the master stopped, until the next one wakes the survivor: polls
    # give up on it after a second and try again
    my $poll = sub {
        my $r = request('GET /api/admin/queue', timeout => 1);
        return ($r->{status} // 0) == 200 ? json_decode($r->{body})->{queue_length} : -1;
    };
    my $reaped = eval {
        wait_until(sub { $poll->() == 0 }, 'the ghosts to go', 10); 1
    } ? 'yes' : 'no';
    my $zombie = (`cat /proc/$victim/stat 2>/dev/null` =~ /\) Z /) ? 'zombie' : 'not a zombie';
    my $mid = admin_queue();
    kill 'CONT', $master;
    my @gone = wait_all(@h);
    my $held = release_gate($hold);
    my @w = respawned($victim, 2);
    my $next = wait_request(chat('next', port => $spread));
    my $s = admin_stats();
    join "\n",
        "reaped without traffic: $reaped ($zombie)",
        "queue then: $mid->{queue_length} waiting, $mid->{processing} running (" .
            ($mid->{running}[0]{worker} == $holder ? 'the hold' : 'not the hold') . ")",
        "reclaimed: " . reclaimed($victim),
        "dead worker's clients answered: " . scalar(grep { $_->{status} } @gone),
        "hold: $held->{status}",
        "workers: " . (@w == 2 && !grep({ !alive($_) } @w) ? '2 alive' : "@w"),
        "next: $next->{status}",
        "reaped counted: $s->{api}{aborted}{reaped}",
        "left by the test: " . ($s->{api}{aborted}{parked} == @left ? 'counted' : "$s->{api}{aborted}{parked} of " . @left),
        "adds up: " . settled();
--- client_output
reaped without traffic: yes (zombie)
queue then: 0 waiting, 1 running (the hold)
reclaimed: 5 entries, 5 requests
dead worker's clients answered: 0
hold: 200
workers: 2 alive
next: 200
reaped counted: 5
left by the test: counted
adds up: yes



=== TEST 3: soak-ish: 40 clients, a worker killed half-way: every request is accounted for, and the line is empty after
--- workers: 2
--- timeout: 90
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- http_config eval
(my $c = $::http_config) =~ s/max_queued=20/max_queued=100/;
$c
--- client
    my $spread = $ENV{TEST_NGINX_SPREAD_PORT};
    my @h = map { chat("c$_", port => $spread, 'X-Standin-Tokens' => 3, 'X-Standin-Delay-Ms' => 20) } 1 .. 40;
    wait_until(sub { @{ standin_requests() } >= 10 }, 'ten served', 30);
    my ($victim) = nginx_worker_pids();
    kill 'KILL', $victim;
    my @res = wait_all(@h);
    respawned($victim, 2);
    wait_until(sub { my $q = admin_queue(); $q->{queue_length} == 0 && $q->{processing} == 0 }, 'an empty line', 20);
    my $s = admin_stats()->{api};
    my $ok = grep { ($_->{status} // 0) == 200 } @res;
    my $lost = grep { !$_->{status} } @res;
    join "\n",
        "received: $s->{received}",
        "every client has an end: " . ($ok + $lost == 40 ? 'yes' : 'no'),
        "some were cut: " . ($lost > 0 ? 'yes' : 'no'),
        "served within the 200s: " . ($s->{served} <= $ok ? 'yes' : "no: $s->{served} > $ok"),
        "the rest were reaped: " . ($ok <= $s->{served} + $s->{aborted}{reaped} ? 'yes' : 'no'),
        "adds up: " . settled();
--- client_output
received: 40
every client has an end: yes
some were cut: yes
served within the 200s: yes
the rest were reaped: yes
adds up: yes



=== TEST 4: one address may park max_queued_per_client requests: the next gets 429 JSON and nothing queues, others still get in, and it may park again once served
--- http_config eval
(my $c = $::http_config) =~ s/tick=50ms/tick=50ms max_queued_per_client=3/;
$c
--- client
    my $hold = hold_gate();
    my @h = park(3, 'api');
    my $over = wait_request(chat('over'));
    my $q1 = admin_queue();
    my @k = park(2, 'coding', key => $alice);
    my $q2 = admin_queue();
    my $s1 = admin_stats();
    standin_release();
    my @res = wait_all($hold, @h, @k);
    my $hold2 = hold_gate();
    my @again = park(3, 'again');
    my $over2 = wait_request(chat('over2'));
    my $q3 = admin_queue();
    standin_release();
    my @res2 = wait_all($hold2, @again);
    my $s2 = admin_stats();
    my @tags = map { $_->{tag} // '' } @{ standin_requests() };
    join "\n",
        "over the cap: $over->{status} $over->{headers}{'content-type'} $over->{body}",
        "retry-after: $over->{headers}{'retry-after'}",
        "queue then: $q1->{queue_length} (" . join(",", map { "$_->{client} $_->{source}" } @{ $q1->{entries} }) . ")",
        "another client (a key): " . ($q2->{queue_length} == 5 ? 'parked' : $q2->{queue_length}),
        "rejected.client_cap: $s1->{api}{rejected}{client_cap}, queue_full: $s1->{api}{rejected}{queue_full}",
        "all served: " . join(" ", map { $_->{status} } @res),
        "over never reached Ollama: " . (grep({ /^over/ } @tags) ? 'no' : 'yes'),
        "parks again after: $q3->{queue_length}, the next: $over2->{status}",
        "served again: " . join(" ", map { $_->{status} } @res2),
        "rejected.client_cap after: $s2->{api}{rejected}{client_cap}",
        "adds up: " . settled();
--- client_output
over the cap: 429 application/json {"error":"too many requests: this client already has 3 waiting in line, the most it may"}
retry-after: 5
queue then: 3 (127.0.0.1 api,127.0.0.1 api,127.0.0.1 api)
another client (a key): parked
rejected.client_cap: 1, queue_full: 0
all served: 200 200 200 200 200 200
over never reached Ollama: yes
parks again after: 3, the next: 429
served again: 200 200 200 200
rejected.client_cap after: 2
adds up: yes
--- error_log
seadragon client "addr:127.0.0.1" already has 3 requests waiting in zone "ollama", its most (max_queued_per_client)



=== TEST 5: a source's own max_queued_per_client wins over the zone's: off for a keyed source, 1 for a keyless one; each key counts on its own
--- http_config eval
(my $c = $::http_config) =~ s/tick=50ms/tick=50ms max_queued_per_client=2/;
$c =~ s/priority=1 key;/priority=1 key max_queued_per_client=off;/;
$c =~ s/seadragon_source api    priority=3;/seadragon_source api    priority=3 max_queued_per_client=1;/;
$c
--- client
    my $hold = hold_gate(key => $bob);
    my @a = park(4, 'alice', key => $alice);
    my @b = park(2, 'bob', key => $bob);
    my @api = park(1, 'api');
    my $api2 = wait_request(chat('api2'));
    my $q = admin_queue();
    standin_release();
    my @res = wait_all($hold, @a, @b, @api);
    my $s = admin_stats();
    join "\n",
        "alice parked: " . scalar(@a) . ", bob parked: " . scalar(@b),
        "a second keyless: $api2->{status}",
        "queue: $q->{queue_length}",
        "served: " . scalar(grep { $_->{status} == 200 } @res) . " of " . scalar(@res),
        "client_cap: coding $s->{coding}{rejected}{client_cap}, api $s->{api}{rejected}{client_cap}",
        "adds up: " . settled();
--- client_output
alice parked: 4, bob parked: 2
a second keyless: 429
queue: 7
served: 8 of 8
client_cap: coding 0, api 1
adds up: yes



=== TEST 6: a killed worker's entries give back their places of max_queued_per_client: the same address parks again at once
--- timeout: 40
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- http_config eval
(my $c = $::http_config) =~ s/tick=50ms/tick=50ms max_queued_per_client=3/;
$c
--- client
    my $hold = hold_gate();
    my @h = park(3, 'api');
    my $over = wait_request(chat('over'));
    my ($victim) = nginx_worker_pids();
    kill 'KILL', $victim;
    my ($worker) = respawned($victim);
    wait_all($hold, @h);
    standin_release();
    my $hold2 = hold_gate();
    my @again = park(3, 'again');
    my $over2 = wait_request(chat('over2'));
    my $q = admin_queue();
    standin_release();
    my @res = wait_all($hold2, @again);
    my $s = admin_stats();
    join "\n",
        "before the kill: $over->{status}",
        "after: parked " . scalar(@again) . ", queue $q->{queue_length}, the next $over2->{status}",
        "served: " . join(" ", map { $_->{status} } @res),
        "reclaimed: " . reclaimed($victim),
        "adds up: " . settled();
--- client_output
before the kill: 429
after: parked 3, queue 3, the next 429
served: 200 200 200 200
reclaimed: 4 entries, 4 requests
adds up: yes



=== TEST 7: a bad max_queued_per_client on seadragon_zone fails nginx -t, naming it
--- http_config
    seadragon_zone ollama:1m max_queued_per_client=0;
--- config
--- must_die
--- error_log
invalid "max_queued_per_client=0": max_queued_per_client must be a whole number of requests, at least 1



=== TEST 8: a bad max_queued_per_client on seadragon_source fails nginx -t, naming it
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source api priority=3 max_queued_per_client=many;
--- config
--- must_die
--- error_log
invalid "max_queued_per_client=many": max_queued_per_client must be a whole number of requests, at least 1, or "off"



=== TEST 10: a dead worker's pid taken by another process does not keep its entries alive: the start time tells them apart
--- timeout: 40
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND} || ! -w '/proc/sys/kernel/ns_last_pid'
--- client
    # an old worker, still serving what it parked, killed after a reload
    my $hold = hold_gate();
    my @h = park(3, 'api');
    my ($old) = nginx_worker_pids();
    nginx_reload();
    my ($new) = grep { $_ != $old } nginx_worker_pids();
    kill 'STOP', $new;
    kill 'KILL', $old;
    wait_until(sub { !-e "/proc/$old" }, 'the master to reap the old worker');
    # another process takes its pid (ns_last_pid: the next pid is the old one)
    my $other;
    for (1 .. 5) {
        last if -e "/proc/$old";
        open my $f, '>', '/proc/sys/kernel/ns_last_pid' or die "ns_last_pid: $!";
        print $f $old - 1;
        close $f;
        my $pid = fork // die "fork: $!";
        if (!$pid) { sleep 60; POSIX::_exit(0) }
        if ($pid == $old) { $other = $pid; last }
        kill 'KILL', $pid; waitpid $pid, 0;
    }
    kill 'CONT', $new;
    my $reaped = eval {
        wait_until(sub { admin_queue()->{queue_length} == 0 && admin_queue()->{processing} == 0 }, 'the ghosts to go', 10); 1
    } ? 'yes' : 'no';
    my $taken = -e "/proc/$old" ? 'yes' : 'no';
    if ($other) { kill 'KILL', $other; waitpid $other, 0 }
    wait_all($hold, @h);
    standin_release();
    my $next = wait_request(chat('next'));
    join "\n",
        "the pid taken by another process: $taken",
        "reaped: $reaped",
        "reclaimed: " . reclaimed($old),
        "next: $next->{status}",
        "adds up: " . settled();
--- client_output
the pid taken by another process: yes
reaped: yes
reclaimed: 4 entries, 4 requests
next: 200
adds up: yes


=== TEST 9: the shipped example: one keyless address parks 8 and no more, a coding key still finds room, and the stats say why
--- timeout: 30
--- http_config eval
::example_conf()
--- config
    location = /unused { return 204; }
--- client
    my $port = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my $auth = { Authorization => "Bearer $ops" };
    my $q = sub { json_decode(request('GET /api/admin/queue', port => $port, headers => $auth)->{body}) };
    my $send = sub {
        my ($tag, %h) = @_;
        start_request('POST /api/ollama/chat', port => $port, body => $body,
            headers => { 'X-Standin-Tag' => $tag, 'X-Standin-Tokens' => 1, %h });
    };
    my $hold = hold_gate(sub { $send->('hold', 'X-Standin-Hold' => 1) });
    my @h;
    for my $i (1 .. 8) {
        push @h, $send->("api$i");
        wait_until(sub { $q->()->{queue_length} == $i }, "api$i to park");
    }
    my $over = wait_request($send->('over'));
    my $coding = $send->('coding', Authorization => "Bearer $alice");
    wait_until(sub { $q->()->{queue_length} == 9 }, 'the coding request to park');
    my $queue = $q->();
    standin_release();
    my @res = wait_all($hold, @h, $coding);
    my $s = json_decode(request('GET /api/admin/stats', port => $port, headers => $auth)->{body})->{sources};
    join "\n",
        "the 9th keyless: $over->{status} $over->{body}",
        "queue: " . join(",", map { $_->{source} } @{ $queue->{entries} }),
        "served: " . scalar(grep { $_->{status} == 200 } @res) . " of " . scalar(@res),
        "api: rejected.client_cap $s->{api}{rejected}{client_cap}, received $s->{api}{received}, served $s->{api}{served}",
        "adds up: " . adds_up($s);
--- client_output
the 9th keyless: 429 {"error":"too many requests: this client already has 8 waiting in line, the most it may"}
queue: coding,api,api,api,api,api,api,api,api
served: 10 of 10
api: rejected.client_cap 1, received 10, served 9
adds up: yes



=== TEST 11: two keys whose names differ only after their 60th character are two clients of max_queued_per_client, not one
--- http_config eval
(my $c = $::http_config) =~ s/tick=50ms/tick=50ms max_queued_per_client=1/;
$c
--- client
    my $hold = hold_gate(key => $alice);
    my @one = park(1, 'long1-', key => $::long1);
    my $over = wait_request(chat('long1-over', key => $::long1));
    my @two = park(1, 'long2-', key => $::long2);
    my $q = admin_queue();
    standin_release();
    my @res = wait_all($hold, @one, @two);
    my $s = admin_stats();
    join "\n",
        "the first key's second: $over->{status}",
        "queue: $q->{queue_length} (" . join(",", map { "$_->{client} $_->{source}" } @{ $q->{entries} }) . ")",
        "served: " . join(" ", map { $_->{status} } @res),
        "client_cap: $s->{coding}{rejected}{client_cap}",
        "adds up: " . settled();
--- client_output eval
"the first key's second: 429
queue: 2 (127.0.0.1 coding,127.0.0.1 coding)
served: 200 200 200
client_cap: 1
adds up: yes"
--- error_log eval
qr/seadragon client "key:n{60}-01" already has 1 requests waiting/



=== TEST 12: a worker killed with SIGKILL while it finishes its requests after a reload: the new worker reaps what it left, without traffic, and the counters add up
--- timeout: 40
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
    my $hold = hold_gate();
    my @h = park(5, 'api');
    my ($victim) = nginx_worker_pids();
    nginx_reload();
    my ($worker) = grep { $_ != $victim } nginx_worker_pids();
    my $shutting = alive($victim) && `cat /proc/$victim/cmdline` =~ /shutting down/ ? 'yes' : 'no';
    my $q1 = admin_queue();
    kill 'KILL', $victim or die "kill $victim: $!";
    my @gone = wait_all($hold, @h);
    wait_until(sub { my $q = admin_queue(); $q->{queue_length} == 0 && $q->{processing} == 0 },
               'the dead worker\'s entries reaped', 10);
    my $q2 = admin_queue();
    standin_release();
    my $api = wait_request(chat('api'));
    my $s = admin_stats();
    join "\n",
        "old worker shutting down with its requests: $shutting",
        "queue before the kill: $q1->{queue_length} waiting, $q1->{processing} running",
        "clients of the dead worker answered: " . scalar(grep { $_->{status} } @gone),
        "queue after: $q2->{queue_length} waiting, $q2->{processing} running",
        "the next request: $api->{status}",
        "new worker alive: " . (alive($worker) ? 'yes' : 'no'),
        "reclaimed: " . reclaimed($victim),
        "reaped: api $s->{api}{aborted}{reaped}",
        "adds up: " . settled();
--- client_output
old worker shutting down with its requests: yes
queue before the kill: 5 waiting, 1 running
clients of the dead worker answered: 0
queue after: 0 waiting, 0 running
the next request: 200
new worker alive: yes
reclaimed: 6 entries, 6 requests
reaped: api 6
adds up: yes
