# The gate with two worker processes: one queue and one capacity for the
# whole zone, whichever worker takes a request.
use lib 't/lib';
use Test::Seadragon;

workers(2);
master_on();

# the zone, the sources, gate.log, and chat($tag) saying "hi" for one token
# (coding3 is a coding tool): the harness's gate_setup()
gate_setup();

run_tests();

__DATA__

=== TEST 1: with 2 workers, a burst of 200 from three sources keeps the order and the capacity
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        access_log logs/gate.log gate;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
    }
_EOC_
--- timeout: 60
--- client
    # every request arrives while the gate is held, so the stand-in must see
    # them in exactly (priority, arrival) order, whichever worker took each
    my $port = $ENV{TEST_NGINX_REUSEPORT_PORT};
    my $hold = hold_gate();
    my @sources = qw(api chat coding);
    my @h;
    for my $i (1 .. 200) {
        my $src = $sources[($i * 7) % 3];
        push @h, start_request('POST /api/chat', port => $port,
            body => '{"model":"llama3:70b","messages":[]}',
            headers => { 'X-Standin-Tag' => "$src$i", "X-$src" => 1,
                         'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0 });
    }
    wait_until(sub { queued_count() == 201 }, 'the burst to queue', 30);
    standin_release();
    my @res = wait_all($hold, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed" if @bad;

    my %rank = (coding => 1, chat => 2, api => 3);
    my (%id, %pids);
    for (split /\n/, access_log_text('gate.log')) {
        my ($tag, $id, $src, $pid) = split / /;
        $id{$tag} = $id;
        $pids{$pid}++ if $tag ne 'hold';
    }
    my @served = map { $_->{tag} } @{ standin_requests() };
    shift @served;                       # the hold
    my @expected = sort { $rank{($a =~ /^([a-z]+)/)[0]} <=> $rank{($b =~ /^([a-z]+)/)[0]}
                          or $id{$a} <=> $id{$b} } @served;
    my ($inversions, $fifo_breaks) = (0, 0);
    for my $i (1 .. $#served) {
        my ($p, $c) = @served[$i - 1, $i];
        my ($ps) = $p =~ /^([a-z]+)/;
        my ($cs) = $c =~ /^([a-z]+)/;
        $inversions++ if $rank{$cs} < $rank{$ps};
        $fifo_breaks++ if $cs eq $ps && $id{$c} < $id{$p};
    }
    sprintf "served=%d workers=%d inversions=%d fifo_breaks=%d exact=%s peak=%d",
        scalar(@served), scalar(keys %pids), $inversions, $fifo_breaks,
        ("@served" eq "@expected" ? "yes" : "no"), standin_stats()->{peak};
--- client_output
served=200 workers=2 inversions=0 fifo_breaks=0 exact=yes peak=1



=== TEST 2: with 2 workers and capacity 2, the capacity is global, not per worker
--- http_config eval
(my $c = $::http_config) =~ s/capacity=\$TEST_NGINX_CAPACITY/capacity=2/;
$c . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
    }
_EOC_
--- timeout: 60
--- client
    my $port = $ENV{TEST_NGINX_REUSEPORT_PORT};
    my @h = map {
        start_request('POST /api/chat', port => $port,
            body => '{"model":"llama3:70b","messages":[]}',
            headers => { 'X-Standin-Tag' => "api$_", 'X-Standin-Tokens' => 4,
                         'X-Standin-Delay-Ms' => 30 })
    } 1 .. 30;
    my @res = wait_all(@h);
    die "failures" if grep { $_->{status} != 200 } @res;
    my $s = standin_stats();
    "served=$s->{served} peak=$s->{peak}";
--- client_output: served=30 peak=2
