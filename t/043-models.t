# Which models are resident (issue 15): the zone's view from what it
# dispatched, from the load_duration of Ollama's answers, and from
# Ollama's /api/ps (seadragon_health ... ps=URI); GET models and the
# models' metrics.  The stand-in holds one model at a time (--max-loaded
# 1) and takes 300 ms to load one, more than the 250 ms from which a
# load_duration is a load: every swap it makes is counted, exactly, in
# its GET /_standin/loads.  Two workers: the view is the zone's.
use lib 't/lib';
use Test::Seadragon;
use Time::HiRes ();

workers(2);
master_on();
standin_options('--max-loaded 1 --load-ms 300 --extra-model mistral:7b '
                . '--extra-model phi3');

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=1;
_EOC_

our $config = <<'_EOC_';
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location = /metrics { seadragon_metrics ollama; }
    location = /health {
        seadragon_health ollama /_seadragon/tags ps=/_seadragon/ps;
    }
    location = /health-junk {
        seadragon_health ollama /_seadragon/tags ps=/_seadragon/junk;
    }
    location = /health-fail {
        seadragon_health ollama /_seadragon/tags ps=/_seadragon/fail;
    }
    location = /_seadragon/tags {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/tags;
        proxy_set_header Host localhost;
    }
    location = /_seadragon/ps {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/ps;
        proxy_set_header Host localhost;
    }
    location = /_seadragon/junk {
        internal;
        default_type application/json;
        return 200 '{"models":[{"name":"phi3"},{"name":';
    }
    location = /_seadragon/fail {
        internal;
        return 500 '{"models":[{"name":"phi3"}]}';
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# a chat for model $m, answered whole; dies unless 200
sub ask {
    my ($m, $tag) = @_;
    my $r = request('POST /api/chat', timeout => 20,
        body => qq({"model":"$m","messages":[{"role":"user","content":"hi"}],"stream":false}),
        headers => { 'X-Standin-Tag' => $tag // $m, 'X-Standin-Tokens' => 1,
                     'X-Standin-Delay-Ms' => 0 });
    die "$m: $r->{status} $r->{body}" unless $r->{status} == 200;
    # its load is counted as its slot is given back, which may come just
    # after the client has the last byte: wait for the gate to be free
    wait_until(sub { !@{ admin_queue()->{running} } }, "$m to leave the gate");
    return $r;
}

sub models { json_decode(request('GET /api/admin/models')->{body}) }

# "model:dispatched/predicted/loads" for each model counted, by name
sub counts {
    my $m = shift // models();
    join " ", map { "$_->{model}:$_->{dispatched}/$_->{predicted_swaps}/$_->{loads}" }
              sort { $a->{model} cmp $b->{model} } @{ $m->{models} };
}

sub resident { my $m = shift // models(); join ",", map { $_->{model} } @{ $m->{resident} } }

sub loads_seen { my $n = 0; $n += $_->{loads} for @{ models()->{models} }; $n }

sub standin_loads {
    my $r = request('GET /_standin/loads', port => $ENV{TEST_NGINX_OLLAMA_PORT});
    return scalar @{ json_decode($r->{body}) };
}

sub unload {
    my $r = request('POST /_standin/unload', port => $ENV{TEST_NGINX_OLLAMA_PORT},
                    body => qq({"model":"$_[0]"}));
    return json_decode($r->{body})->{unloaded} ? "unloaded" : "kept";
}

# the block starts with llama3:70b loaded anew (llama3:70b:1/1/1) and the
# stand-in's records empty, whatever the block before left resident
sub start_with_llama {
    unload($_) for qw(llama3:70b mistral:7b phi3);
    ask('llama3:70b', 'warm');
    standin_reset();
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: A B A with one model at a time: three swaps, each seen in load_duration, exactly the stand-in's loads; three predicted
--- client
    unload($_) for qw(llama3:70b mistral:7b phi3);
    standin_reset();
    ask('phi3'); ask('mistral:7b'); ask('phi3:latest');
    my $m = models();
    my $loads = standin_loads();
    join "\n", "loaded $m->{loaded}", counts($m), "resident " . resident($m),
        "gateway " . loads_seen() . " stand-in $loads",
        "load_seconds " . join(",", map { $_->{load_seconds} >= 0.3 * $_->{loads} ? "ok" : "short" }
                                    @{ $m->{models} });
--- client_output
loaded 1
mistral:7b:1/1/1 phi3:latest:2/2/2
resident phi3:latest
gateway 3 stand-in 3
load_seconds ok,ok



=== TEST 2: a model asked again while resident is neither a swap nor a predicted one; the resident list follows the last
--- client
    start_with_llama();
    my $before = counts();
    ask('llama3:70b'); ask('llama3:70b');
    my $after = counts();
    ask('mistral:7b');
    join "\n", $before, $after, counts(), resident(),
        "gateway after the warm-up " . (loads_seen() - 1) . ", stand-in " . standin_loads();
--- client_output
llama3:70b:1/1/1
llama3:70b:3/1/1
llama3:70b:3/1/1 mistral:7b:1/1/1
mistral:7b
gateway after the warm-up 1, stand-in 1



=== TEST 3: /api/ps corrects the view: a model Ollama expired leaves the server's view at once, the gate's once not dispatched for 2 s
--- client
    start_with_llama();
    my @out = (resident());
    push @out, unload('llama3:70b');
    my $h = request('GET /health');
    my $m = models();
    my ($srv) = @{ $m->{servers} };
    push @out, "health $h->{status}", "server " . join(",", @{ $srv->{models} })
               . " checked " . ($srv->{checked} ? "yes" : "no"),
               "gate " . resident($m);
    Time::HiRes::sleep(2.2);
    request('GET /health');
    push @out, "gate after 2 s: " . resident();
    # a model loaded outside the gateway enters both views
    request('POST /api/generate', port => $ENV{TEST_NGINX_OLLAMA_PORT},
            body => '{"model":"phi3","prompt":"hi","stream":false}');
    request('GET /health');
    $m = models();
    push @out, "gate " . resident($m) . ", server " . join(",", @{ $m->{servers}[0]{models} }),
               counts($m);
    join "\n", @out;
--- client_output
llama3:70b
unloaded
health 200
server  checked yes
gate llama3:70b
gate after 2 s: 
gate phi3:latest, server phi3:latest
llama3:70b:1/1/1



=== TEST 4: a garbled or failing /api/ps changes nothing, and health answers all the same
--- client
    start_with_llama();
    my $before = request('GET /api/admin/models')->{body};
    my @out;
    for my $uri ('/health-junk', '/health-fail') {
        my $h = request("GET $uri");
        push @out, "$uri $h->{status} " . json_decode($h->{body})->{status};
    }
    push @out, request('GET /api/admin/models')->{body} eq $before ? "unchanged" : "changed";
    my $m = models();
    push @out, resident($m), "checked " . ($m->{servers}[0]{checked} // "null");
    join "\n", @out;
--- client_output
/health-junk 200 healthy
/health-fail 200 healthy
unchanged
llama3:70b
checked null
--- error_log
is not Ollama's /api/ps, the models known are kept



=== TEST 5: the metrics: swaps, predicted swaps and dispatches by model, and the resident model
--- client
    unload($_) for qw(llama3:70b mistral:7b phi3);
    ask('mistral:7b'); ask('llama3:70b'); ask('llama3:70b');
    my $t = request('GET /metrics')->{body};
    join "\n", grep { /^(# TYPE )?seadragon_model_(swaps|predicted|dispatched|resident)/ } split /\n/, $t;
--- client_output
# TYPE seadragon_model_swaps_total counter
seadragon_model_swaps_total{zone="ollama",model="mistral:7b"} 1
seadragon_model_swaps_total{zone="ollama",model="llama3:70b"} 1
# TYPE seadragon_model_predicted_swaps_total counter
seadragon_model_predicted_swaps_total{zone="ollama",model="mistral:7b"} 1
seadragon_model_predicted_swaps_total{zone="ollama",model="llama3:70b"} 1
# TYPE seadragon_model_dispatched_total counter
seadragon_model_dispatched_total{zone="ollama",model="mistral:7b"} 1
seadragon_model_dispatched_total{zone="ollama",model="llama3:70b"} 2
# TYPE seadragon_model_resident gauge
seadragon_model_resident{zone="ollama",model="llama3:70b"} 1



=== TEST 6: refused requests count nothing: a bad body and a wait that ended at a paused gate leave the models as they were, and reach no Ollama
--- http_config
    seadragon_zone ollama:1m capacity=1 max_wait=1s;
    seadragon_source api priority=1;
--- client
    start_with_llama();
    my $before = request('GET /api/admin/models')->{body};
    my @out;
    my $r = request('POST /api/chat', body => '{"model":"mistral:7b",');
    push @out, "bad body $r->{status}";
    request('POST /api/admin/gate/pause');
    $r = request('POST /api/chat', body => '{"model":"mistral:7b","messages":[]}', timeout => 10);
    push @out, "paused $r->{status}";
    request('POST /api/admin/gate/resume');
    push @out, request('GET /api/admin/models')->{body} eq $before ? "unchanged" : "changed",
               counts(), "stand-in saw " . scalar(@{ standin_requests() });
    join "\n", @out;
--- client_output
bad body 400
paused 503
unchanged
llama3:70b:1/1/1
stand-in saw 0



=== TEST 7: a reload keeps the counts and the view
--- client
    unload($_) for qw(llama3:70b mistral:7b phi3);
    standin_reset();
    ask('llama3:70b'); ask('mistral:7b');
    my $before = counts() . " | " . resident();
    nginx_reload();
    my $after = counts() . " | " . resident();
    ask('llama3:70b');
    # the answer's load is counted as its slot is given back, which may be
    # just after the client has the last byte
    wait_until(sub { loads_seen() == 3 }, 'the third load to be counted');
    join "\n", $before, $after, counts(), "gateway " . loads_seen() . " stand-in " . standin_loads();
--- client_output
llama3:70b:1/1/1 mistral:7b:1/1/1 | mistral:7b
llama3:70b:1/1/1 mistral:7b:1/1/1 | mistral:7b
llama3:70b:2/2/2 mistral:7b:1/1/1
gateway 3 stand-in 3



=== TEST 8: ps= must name a URI
--- config
    location = /health { seadragon_health ollama /_seadragon/tags ps=tags; }
--- must_die
--- error_log
invalid parameter "ps=tags": expected ps=URI, the URI of a location that proxies to Ollama's /api/ps



=== TEST 9: GET models takes GET only, and a zone that dispatched nothing shows empty lists
--- client
    my $r = request('POST /api/admin/models');
    my $m = models();
    join "\n", "POST $r->{status}", "loaded $m->{loaded} resident [" . resident($m)
        . "] servers " . scalar(@{ $m->{servers} }) . " models " . scalar(@{ $m->{models} });
--- client_output
POST 405
loaded 1 resident [] servers 0 models 0



=== TEST 10: an unhealthy check does not ask /api/ps (a healthy one does): the views stay as they were
--- http_config eval
$::http_config . "    log_format sub \$uri;\n"
--- config eval
(my $c = $::config) =~ s{(location = /_seadragon/tags \{\s*internal;\s*proxy_pass http://127.0.0.1:)\$TEST_NGINX_OLLAMA_PORT}{${1}1};
$c . "    access_log logs/sub.log sub;\n    log_subrequest on;\n"
    . "    location = /health-ok { seadragon_health ollama /_seadragon/ps ps=/_seadragon/ps; }\n"
--- client
    start_with_llama();
    my $before = request('GET /api/admin/models')->{body};
    my $h = request('GET /health');
    my $seen = grep { m{^/_seadragon/ps$} } split /\n/, access_log_text('sub.log');
    my $same = request('GET /api/admin/models')->{body} eq $before ? "unchanged" : "changed";
    my $ok = request('GET /health-ok');
    my $then = grep { m{^/_seadragon/ps$} } split /\n/, access_log_text('sub.log');
    join "\n", "health $h->{status} " . json_decode($h->{body})->{reason},
        "ps asked: $seen", $same, "a healthy check: $ok->{status}, ps asked: $then";
--- client_output
health 503 Ollama is not reachable
ps asked: 0
unchanged
a healthy check: 200, ps asked: 2
