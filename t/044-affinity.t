# Model affinity (seadragon_zone affinity=TIME): among the requests of the
# best priority, one for a model that is loaded goes before one for a
# model that is not, unless that one has waited TIME already; priorities
# are never inverted.  The stand-in holds one model at a time (as
# OLLAMA_MAX_LOADED_MODELS=1) and records every load, so the blocks count
# swaps exactly.  Every block parks its requests behind a held gate.
use lib 't/lib';
use Test::Seadragon;
use Time::HiRes ();

standin_options('--max-loaded 1 --load-ms 300 --extra-model mistral:7b --extra-model phi3:mini');

gate_setup();
$::http_config =~ s/capacity=\$TEST_NGINX_CAPACITY/capacity=1 \$TEST_NGINX_AFFINITY/;
$ENV{TEST_NGINX_AFFINITY} = 'affinity=30s';

my %model = (l => 'llama3:70b', m => 'mistral:7b', p => 'phi3:mini');

# the stand-in's record of every model load, but the holds' (a hold may
# be loading its model still when the count is first taken)
sub loads {
    my $r = request('GET /_standin/loads', port => $ENV{TEST_NGINX_OLLAMA_PORT});
    return scalar grep { ($_->{tag} // '') ne 'lhold' } @{ json_decode($r->{body}) };
}

# a chat for the model of the tag's letter after the source ("apil1": llama3)
sub ask {
    my ($tag, @more) = @_;
    my ($letter) = $tag =~ /^(?:api|coding)?([lmp])/;
    return start_request('POST /api/chat',
        body => qq({"model":"$model{$letter}","messages":[{"role":"user","content":"hi"}]}),
        headers => { 'X-Standin-Tag' => $tag, 'X-Standin-Tokens' => 1,
                     ($tag =~ /^coding/ ? ('X-coding' => 1) : ()), @more });
}

# the hold (on llama3, which is then loaded), the tags parked in order
# (a number after a tag's name is a pause in seconds before it), released;
# returns the order Ollama saw and how many loads it made after the hold's
sub burst {
    my (@tags) = @_;
    my $hold = ask('lhold', 'X-Standin-Hold' => 1);
    wait_until(sub { standin_stats()->{active} == 1 }, 'the hold to reach Ollama');
    my $loads = loads();
    my $base = queued_count();
    my @h;
    for my $t (@tags) {
        if ($t =~ /^[\d.]+$/) { Time::HiRes::sleep($t); next }
        push @h, ask($t);
        my $n = scalar @h;
        wait_until(sub { queued_count() == $base + $n }, "$t to queue");
    }
    standin_release();
    my @res = wait_all($hold, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed: " . said($bad[0]) if @bad;
    my @served = grep { $_ ne 'lhold' } map { $_->{tag} } @{ standin_requests() };
    my $after = loads() - $loads;
    return join(",", @served) . "\nloads: $after";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: affinity off: arrival order, and a load on almost every request
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_AFFINITY//;
$c
--- client
    burst(qw(m1 l1 m2 l2 p1 l3));
--- client_output
m1,l1,m2,l2,p1,l3
loads: 6



=== TEST 2: affinity=30s: the loaded model's requests first, then each model's in turn: 2 loads instead of 6
--- client
    burst(qw(m1 l1 m2 l2 p1 l3));
--- client_output
l1,l2,l3,m1,m2,p1
loads: 2



=== TEST 3: affinity=2s: a request that has waited that long is not passed over (m1 first), later ones keep to the loaded model
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_AFFINITY/affinity=2s/;
$c
--- client
    burst(qw(m1 2.5 l1 m2 l2));
--- client_output
m1,m2,l1,l2
loads: 2



=== TEST 4: affinity never inverts priorities: a coding request for an unloaded model goes before api requests for the loaded one
--- client
    burst(qw(l1 l2 codingm1 l3));
--- client_output
codingm1,l1,l2,l3
loads: 2



=== TEST 5: with 2 workers and after a reload, the zone still knows what is loaded (the order follows it)
--- workers: 2
--- timeout: 60
--- config eval
$::config . '    location /api/admin/ { seadragon_admin ollama auth=nginx; }'
--- client
    # mistral is the last model dispatched, then nginx reloads
    my $r = wait_request(ask('m0'));
    die said($r) unless $r->{status} == 200;
    nginx_reload();
    request('POST /api/admin/gate/pause');
    my $base = queued_count();
    my @h = (ask('l1'));
    wait_until(sub { queued_count() == $base + 1 }, 'l1 to queue');
    push @h, ask('m1');
    wait_until(sub { queued_count() == $base + 2 }, 'm1 to queue');
    push @h, ask('l2');
    wait_until(sub { queued_count() == $base + 3 }, 'l2 to queue');
    request('POST /api/admin/gate/resume');
    my @res = wait_all(@h);
    join ",", (grep { $_ ne 'm0' } map { $_->{tag} } @{ standin_requests() }),
        map { $_->{status} } @res;
--- client_output
m1,l1,l2,200,200,200
