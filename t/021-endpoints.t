# The endpoint policy, through the shipped example (conf/seadragon.conf):
# what generates queues, what describes does not, model management is for
# admin keys only, unknown paths are 404, and no spelling of a path gets
# around the policy, the keys or the whitelist.
use lib 't/lib';
use Test::Seadragon;

our $example = example_conf();

our $StoreDir = store_init();
sub tool { store_tool(@_) }
tool('whitelist add 127.0.0.1');
our $admin_key = tool('key create root --source admin');
our $coding_key = tool('key create editor --source coding');

# the example's chat takes a logged-in user only ("login"): a person of
# the chat source, who logs in at the example's /auth/token
{
    my $file = "$StoreDir/password";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "chat person\n";
    close $fh;
    tool("user add talk --source chat < '$file'");
    unlink $file;
}
sub chat_token {
    my $r = request('POST /auth/token', port => $ENV{TEST_NGINX_EXAMPLE_PORT},
        body => 'username=talk&password=chat+person',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return json_decode($r->{body})->{access_token}
        // die "no token: $r->{status} $r->{body}";
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $example) unless defined $block->http_config;
    $block->set_value("config", "    location = /unused { return 204; }\n")
        unless defined $block->config;
});

sub ex {
    my ($line, %a) = @_;
    return request($line, port => $ENV{TEST_NGINX_EXAMPLE_PORT}, %a);
}

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}';
our $model = '{"model":"llama3:70b"}';

# "status body" of a request, the body as one line

no_shuffle();
run_tests();

__DATA__

=== TEST 1: every endpoint that generates queues; every one that describes does not
--- client
    my @out;
    for (['POST /api/chat', $chat], ['POST /api/generate', '{"model":"llama3:70b","prompt":"hi","stream":false}'],
         ['POST /api/embed', '{"model":"nomic-embed-text","input":"hi"}'],
         ['POST /api/embeddings', '{"model":"nomic-embed-text","prompt":"hi"}'],
         ['POST /v1/chat/completions', $chat], ['POST /v1/completions', '{"model":"llama3:70b","prompt":"hi"}'],
         ['POST /v1/embeddings', '{"model":"nomic-embed-text","input":"hi"}'],
         ['POST /api/show', $model], ['GET /api/tags'], ['GET /api/ps'], ['GET /api/version'],
         ['GET /v1/models'], ['GET /v1/models/llama3:70b'], ['GET /api/ollama/version'],
         ['POST /api/ollama/show', $model])
    {
        my ($line, $body) = @$_;
        my $r = ex($line, defined $body ? (body => $body) : ());
        push @out, "$line $r->{status} " . (defined $r->{headers}{'x-queue-position'} ? 'queued' : 'direct');
    }
    my @endpoints;
    wait_until(sub { @endpoints = access_log_text('seadragon.access.log') =~ /endpoint=(\S+)/g;
                     @endpoints == @out }, 'every request in the access log');
    join "\n", @out, "@endpoints";
--- client_output
POST /api/chat 200 queued
POST /api/generate 200 queued
POST /api/embed 200 queued
POST /api/embeddings 200 queued
POST /v1/chat/completions 200 queued
POST /v1/completions 200 queued
POST /v1/embeddings 200 queued
POST /api/show 200 direct
GET /api/tags 200 direct
GET /api/ps 200 direct
GET /api/version 200 direct
GET /v1/models 200 direct
GET /v1/models/llama3:70b 200 direct
GET /api/ollama/version 200 direct
POST /api/ollama/show 200 direct
/api/chat /api/generate /api/embed /api/embeddings /v1/chat/completions /v1/completions /v1/embeddings /api/show /api/tags /api/ps /api/version /v1/models /v1/models/ /api/version /api/show



=== TEST 2: model management is refused to every source without an admin key, before Ollama
--- client
    my @out;
    my $token = main::chat_token();
    my %as = (api => {}, chat => { Origin => 'http://localhost:3000', Authorization => "Bearer $token" },
              coding => { 'User-Agent' => 'continue/1.0', Authorization => "Bearer $::coding_key" });
    for my $who (qw(api chat coding)) {
        for (['POST /api/pull'], ['POST /api/push'], ['POST /api/create'],
             ['POST /api/copy', '{"source":"llama3:70b","destination":"x"}'],
             ['DELETE /api/delete'], ['POST /api/blobs/sha256-0a1b'], ['HEAD /api/blobs/sha256-0a1b'],
             ['POST /api/ollama/pull'], ['DELETE /api/ollama/delete'])
        {
            my ($line, $body) = @$_;
            my $r = ex($line, body => $body // $::model, headers => $as{$who});
            push @out, "$who $line " . said($r);
        }
    }
    my %seen;
    $seen{$_}++ for @out;
    push @out, "ollama saw " . scalar(@{ standin_requests() });
    join "\n", @out[0 .. 8], $out[-1];
--- client_output
api POST /api/pull 403 {"error":"model management needs an admin key"}
api POST /api/push 403 {"error":"model management needs an admin key"}
api POST /api/create 403 {"error":"model management needs an admin key"}
api POST /api/copy 403 {"error":"model management needs an admin key"}
api DELETE /api/delete 403 {"error":"model management needs an admin key"}
api POST /api/blobs/sha256-0a1b 403 {"error":"model management needs an admin key"}
api HEAD /api/blobs/sha256-0a1b 403 
api POST /api/ollama/pull 403 {"error":"model management needs an admin key"}
api DELETE /api/ollama/delete 403 {"error":"model management needs an admin key"}
ollama saw 0
--- error_log
seadragon: the source "chat" may not use "/api/pull"
seadragon: the source "coding" may not use "/api/delete"



=== TEST 3: an admin key reaches model management, without queueing
--- client
    my %h = (Authorization => "Bearer $::admin_key");
    my @r = (ex('POST /api/pull', body => $::model, headers => \%h),
             ex('POST /api/pull', body => '{"model":"llama3:70b","stream":false}', headers => \%h),
             ex('DELETE /api/delete', body => '{"model":"nope:1b"}', headers => \%h),
             ex('POST /api/copy', body => '{"source":"llama3:70b","destination":"mine"}', headers => \%h),
             ex('HEAD /api/blobs/sha256-0a1b', headers => \%h),
             ex('POST /api/ollama/create', body => '{"model":"mine","stream":false}', headers => \%h),
             ex('GET /api/tags', headers => \%h));
    my @lines = split /\n/, $r[0]{body};
    my @paths = map { "$_->{method} $_->{path}" } @{ standin_requests() };
    my $auth = grep { exists $_->{headers}{authorization} } @{ standin_requests() };
    join "\n", (map { "$_->{status} " . (defined $_->{headers}{'x-queue-position'} ? 'queued' : 'direct') } @r),
        scalar(@lines) . " lines, last $lines[-1]", $r[1]{body}, $r[2]{body}, @paths,
        "keys passed on: $auth";
--- client_output
200 direct
200 direct
404 direct
200 direct
404 direct
200 direct
200 direct
4 lines, last {"status":"success"}
{"status":"success"}
{"error":"model \"nope:1b\" not found"}
POST /api/pull
POST /api/pull
DELETE /api/delete
POST /api/copy
HEAD /api/blobs/sha256-0a1b
POST /api/create
GET /api/tags
keys passed on: 0



=== TEST 4: an admin key may not generate unless a source "admin" is configured to
--- client
    my $r = ex('POST /api/chat', body => $::chat, headers => { Authorization => "Bearer $::admin_key" });
    said($r) . " ollama saw " . scalar(@{ standin_requests() });
--- client_output: 403 {"error":"this client may not generate: its source allows no \"generate\" endpoints"} ollama saw 0



=== TEST 5: unknown paths get 404 JSON and never reach Ollama
--- client
    join "\n", (map { my ($m, $p) = split / /; "$_ " . said(ex($_, body => $m eq 'POST' ? $::model : undef)) }
        'POST /api/nothing', 'GET /api/', 'POST /api/chat/extra', 'GET /api/tags/',
        'POST /v1/chat', 'GET /v1/models/a/b', 'POST /v1/', 'POST /api/ollama/',
        'POST /api/delete;x', 'GET /nothing'),
        "ollama saw " . scalar(@{ standin_requests() });
--- client_output
POST /api/nothing 404 {"error":"404 page not found: no such endpoint"}
GET /api/ 404 {"error":"404 page not found: no such endpoint"}
POST /api/chat/extra 404 {"error":"404 page not found: no such endpoint"}
GET /api/tags/ 404 {"error":"404 page not found: no such endpoint"}
POST /v1/chat 404 {"error":{"message":"404 page not found: no such endpoint","type":"not_found_error","param":null,"code":null}}
GET /v1/models/a/b 404 {"error":{"message":"404 page not found: no such endpoint","type":"not_found_error","param":null,"code":null}}
POST /v1/ 404 {"error":{"message":"404 page not found: no such endpoint","type":"not_found_error","param":null,"code":null}}
POST /api/ollama/ 404 {"error":"404 page not found: no such endpoint"}
POST /api/delete;x 404 {"error":"404 page not found: no such endpoint"}
GET /nothing 404 {"error":"not found"}
ollama saw 0



=== TEST 6: no spelling of a path reaches model management without an admin key
--- client
    my @out;
    for my $path ('//api/../api/delete', '/api%2Fdelete', '/api/%64elete', '/api/DELETE',
                  '/API/DELETE', '/api/delete.', '/api/delete/', '/api/delete..', '/api/./delete',
                  '/v1/../api/delete', '/api/ollama/../delete', '/api/ollama/%2e%2e/delete',
                  '/api/blobs/../pull', '/api/ollama/Pull', '/api/Blobs/sha256-00',
                  '/api/delete?model=x', '/api//delete', '/api/ollama/./copy/')
    {
        my $r = ex("DELETE $path", body => $::model);
        push @out, "$path $r->{status}";
    }
    join "\n", @out, "ollama saw " . scalar(@{ standin_requests() });
--- client_output
//api/../api/delete 403
/api%2Fdelete 403
/api/%64elete 403
/api/DELETE 403
/API/DELETE 404
/api/delete. 403
/api/delete/ 403
/api/delete.. 403
/api/./delete 403
/v1/../api/delete 403
/api/ollama/../delete 403
/api/ollama/%2e%2e/delete 403
/api/blobs/../pull 403
/api/ollama/Pull 403
/api/Blobs/sha256-00 403
/api/delete?model=x 403
/api//delete 403
/api/ollama/./copy/ 403
ollama saw 0



=== TEST 7: no spelling of a path skips the whitelist or the key check
--- client
    tool('whitelist remove 127.0.0.1');
    my @out;
    for my $path ('/api/chat', '//api/chat', '/api/./chat', '/api/ollama/../chat', '/api%2Fchat',
                  '/v1/../api/chat', '/api/ollama/%63hat')
    {
        push @out, "$path " . said(ex("POST $path", body => $::chat));
        push @out, "$path " . said(ex("POST $path", body => $::chat,
                                      headers => { Authorization => 'Bearer sd-forged0000000000000000000000000' }));
    }
    tool('whitelist add 127.0.0.1');
    join "\n", @out, "ollama saw " . scalar(@{ standin_requests() });
--- client_output
/api/chat 403 {"error":"IP not whitelisted"}
/api/chat 401 {"error":"invalid API key"}
//api/chat 403 {"error":"IP not whitelisted"}
//api/chat 401 {"error":"invalid API key"}
/api/./chat 403 {"error":"IP not whitelisted"}
/api/./chat 401 {"error":"invalid API key"}
/api/ollama/../chat 403 {"error":"IP not whitelisted"}
/api/ollama/../chat 401 {"error":"invalid API key"}
/api%2Fchat 403 {"error":"IP not whitelisted"}
/api%2Fchat 401 {"error":"invalid API key"}
/v1/../api/chat 403 {"error":"IP not whitelisted"}
/v1/../api/chat 401 {"error":"invalid API key"}
/api/ollama/%63hat 403 {"error":"IP not whitelisted"}
/api/ollama/%63hat 401 {"error":"invalid API key"}
ollama saw 0



=== TEST 8: errors on /v1 take OpenAI's shape, with the status's type
--- client
    my $bad = { Authorization => 'Bearer sd-forged0000000000000000000000000' };
    my @out = (
        said(ex('POST /v1/chat/completions', body => $::chat, headers => $bad)),
        said(ex('POST /v1/chat/completions', body => '{"model":')),
        said(ex('POST /v1/chat/completions', body => '[1,2]')),
        said(ex('POST /v1/embeddings', body => '{"model":"x","input":"' . ('a' x (17 * 1024 * 1024)) . '"}')),
        said(ex('POST /v1/pull', body => $::model)),
        said(ex('POST /api/chat', body => '{"model":')),
    );
    tool('whitelist remove 127.0.0.1');
    push @out, said(ex('POST /v1/completions', body => $::chat));
    tool('whitelist add 127.0.0.1');
    join "\n", @out;
--- client_output
401 {"error":{"message":"invalid API key","type":"authentication_error","param":null,"code":null}}
400 {"error":{"message":"Invalid JSON","type":"invalid_request_error","param":null,"code":null}}
400 {"error":{"message":"Invalid JSON: the request body must be a JSON object","type":"invalid_request_error","param":null,"code":null}}
413 {"error":{"message":"request body too large: see client_max_body_size","type":"invalid_request_error","param":null,"code":null}}
403 {"error":{"message":"model management needs an admin key","type":"permission_error","param":null,"code":null}}
400 {"error":"Invalid JSON"}
403 {"error":{"message":"IP not whitelisted","type":"permission_error","param":null,"code":null}}



=== TEST 9: a source's endpoints= decides what it may use
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source ops      priority=1 if=$http_x_ops endpoints=all;
    seadragon_source readonly priority=2 if=$http_x_readonly endpoints=info;
    seadragon_source api      priority=3;
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_set_header Host localhost;
    }
--- client
    join "\n",
        "ops pull " . request('POST /api/pull', body => '{"model":"x","stream":false}', headers => { 'X-Ops' => 1 })->{status},
        "ops chat " . request('POST /api/chat', body => $::chat, headers => { 'X-Ops' => 1 })->{status},
        "readonly tags " . request('GET /api/tags', headers => { 'X-Readonly' => 1 })->{status},
        "readonly chat " . said(request('POST /api/chat', body => $::chat, headers => { 'X-Readonly' => 1 })),
        "api pull " . said(request('POST /api/pull', body => $::model)),
        "ollama saw " . join(",", map { $_->{path} } @{ standin_requests() });
--- client_output
ops pull 200
ops chat 200
readonly tags 200
readonly chat 403 {"error":"this client may not generate: its source allows no \"generate\" endpoints"}
api pull 403 {"error":"model management needs an admin key"}
ollama saw /api/pull,/api/chat,/api/tags
