# The shipped example, conf/seadragon.conf, works as it is: only its
# addresses and log path are moved to the test's own.
use lib 't/lib';
use Test::Seadragon;

# the example, with placeholders the harness fills in for each block
our $example = example_conf();

# its store, with loopback whitelisted as make run does
store_init();
sub tool { store_tool(@_) }
tool('whitelist add 127.0.0.1');

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $example);
    $block->set_value("config", "    location = /unused { return 204; }\n");
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the example starts and answers at Ollama's root
--- client
    my $r = request('GET /', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    "$r->{status} $r->{body}";
--- client_output: 200 Ollama is running



=== TEST 2: a streamed chat through the reference URL, with the queue headers
--- client
    my $r = request('POST /api/ollama/chat', port => $ENV{TEST_NGINX_EXAMPLE_PORT},
        body => '{"model":"llama3:70b","messages":[{"role":"user","content":"Why is the sky blue?"}]}',
        headers => { 'X-Standin-Tokens' => 4 });
    my $s = standin_requests()->[0];
    my @lines = split /\n/, $r->{body};
    join " ", $r->{status}, $r->{headers}{'content-type'}, scalar(@lines),
        "position=$r->{headers}{'x-queue-position'}",
        "wait=$r->{headers}{'x-queue-wait-time'}", $s->{path}, $s->{headers}{host};
--- client_output: 200 application/x-ndjson 5 position=1 wait=0 /api/chat localhost



=== TEST 3: GET /api/ollama/tags reaches Ollama's /api/tags without queueing
--- client
    my $r = request('GET /api/ollama/tags', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    join " ", $r->{status}, (exists $r->{headers}{'x-queue-position'} ? 'queued' : 'not-queued'),
        ($r->{body} =~ /"models"/ ? 'models' : 'none'), standin_requests()->[0]{path};
--- client_output: 200 not-queued models /api/tags



=== TEST 4: Ollama's own paths and the OpenAI-compatible ones work as a base URL
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my $a = request('POST /api/generate', port => $p,
        body => '{"model":"llama3:70b","prompt":"hi","stream":false}');
    my $b = request('POST /v1/chat/completions', port => $p,
        body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":true}');
    my $c = request('GET /v1/models', port => $p);
    my $d = request('GET /', port => $p);
    join " ", $a->{status}, $b->{status},
        ($b->{body} =~ /data: \[DONE\]/ ? 'sse' : 'no-sse'), $c->{status}, $d->{body};
--- client_output: 200 200 sse 200 Ollama is running



=== TEST 5: coding tools need their key; with it they are told apart
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my $body = '{"model":"llama3:70b","messages":[],"stream":false}';
    my $claim = request('POST /api/chat', port => $p, body => $body,
        headers => { 'User-Agent' => 'Continue/1.0 (vscode)' });
    die "a claimed coding tool got $claim->{status}" unless $claim->{status} == 401;
    my $key = tool('key create continue-alice --source coding');
    my $r = request('POST /api/chat', port => $p, body => $body,
        headers => { 'User-Agent' => 'Continue/1.0 (vscode)',
                     'Authorization' => "Bearer $key" });
    my $line;
    wait_until(sub {
        ($line) = grep { m{POST /api/chat HTTP/1\.1" 200 } }
                  split /\n/, access_log_text('seadragon.access.log');
        defined $line }, 'the access log line');
    ($line =~ /source=(\S+) priority=(\d+) model="([^"]*)" stream=\S+ key=(\S+)/)
        ? "$1 $2 $3 $4" : $line;
--- client_output: coding 1 llama3:70b continue-alice



=== TEST 6: an unknown path is a JSON 404
--- client
    my $r = request('GET /admin.php', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    "$r->{status} $r->{headers}{'content-type'} $r->{body}";
--- client_output: 404 application/json {"error":"not found"}



=== TEST 7: the reference design's health URL asks Ollama
--- client
    my $r = request('GET /api/ollama/health', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    my @tags = grep { $_->{path} eq '/api/tags' } @{ standin_requests() };
    "$r->{status} " . ($r->{body} =~ /^\{"status":"healthy"/ ? 'healthy' : $r->{body})
        . " asked=" . scalar(@tags);
--- client_output: 200 healthy asked=1



=== TEST 8: the reference design's admin queue wants an admin key
--- client
    my $p = $ENV{TEST_NGINX_EXAMPLE_PORT};
    my $refused = request('GET /api/admin/queue', port => $p);
    my $key = tool('key create ops --source admin');
    my $r = request('GET /api/admin/queue', port => $p,
        headers => { Authorization => "Bearer $key" });
    my $q = json_decode($r->{body});
    "$refused->{status} $r->{status} gate=$q->{gate} length=$q->{queue_length}";
--- client_output: 401 200 gate=open length=0



=== TEST 9: metrics answer this machine
--- client
    my $r = request('GET /metrics', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    "$r->{status} " . ($r->{body} =~ /^seadragon_gate_capacity\{zone="ollama"\} 1$/m ? 'capacity' : 'none');
--- client_output: 200 capacity



=== TEST 10: the admin page is served next to the admin API
--- client
    my $r = request('GET /api/admin/page', port => $ENV{TEST_NGINX_EXAMPLE_PORT});
    join " ", $r->{status}, $r->{headers}{'content-type'},
        ($r->{body} =~ m{<title>Seadragon: gate and queue</title>} ? 'page' : 'no page');
--- client_output: 200 text/html page
