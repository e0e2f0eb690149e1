# Real clients through the gateway over TLS with an API key (or, for the
# chat source, which takes people only, a login's token): the official
# `ollama` and `openai` npm packages (t/package.json pins them), used as
# their users do, against conf/seadragon-tls.conf on test ports.  Node
# trusts the throwaway CA through NODE_EXTRA_CA_CERTS; t/node/clients.cjs
# makes one call per process and prints what the client returned.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::TLS;
use FindBin;

our $repo = "$FindBin::Bin/..";
# the store, with loopback whitelisted, the harness's own server (it shares
# the example's zone: tls_hold() there holds the gate) and the example on
# test ports: tls_setup()
tls_setup();
sub tool { store_tool(@_) }

# one key for each name, made on first use; the example's chat source
# takes a logged-in user only ("login"), so a chat name is a person of
# the chat source and its credential the token of a login on the chat host
our %keys;
sub key {
    my ($name) = @_;
    my ($source) = $name =~ /^([a-z]+)/;
    return $keys{$name} //= $source eq 'chat' ? chat_token($name)
                                               : tool("key create $name --source $source");
}

sub chat_token {
    my ($name) = @_;
    my $file = servroot() . "/password.$$";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "chat person\n";
    close $fh;
    tool("user add $name --source chat < '$file'");
    unlink $file;
    my $r = curl('POST', 'https://chat.example.com/auth/token',
        body => "username=$name&password=chat+person",
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return json_decode($r->{body})->{access_token}
        // die "no token: $r->{status} $r->{body}";
}

our $modules;
our @running;

# Starts one client call in its own node process.
sub client_start {
    my ($call, %a) = @_;
    $modules //= node_modules();
    my $out = servroot() . "/clients/node." . (@running + 1) . ".$$.json";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ENV{NODE_PATH} = $modules;
        $ENV{NODE_EXTRA_CA_CERTS} = tls_certificates()->{ca};
        $ENV{SEADRAGON_URL} = "https://api.example.com:$ENV{TEST_NGINX_TLS_PORT}";
        $ENV{SEADRAGON_KEY} = $a{key} // die "no key";
        open STDOUT, '>', $out;
        open STDERR, '>', "$out.err";
        exec 'node', '--require', "$repo/t/node/example-hosts.cjs",
             "$repo/t/node/clients.cjs", $call, $a{text} // ();
        POSIX::_exit(127);
    }
    my $h = { pid => $pid, out => $out, call => $call };
    push @running, $h;
    return $h;
}

sub client_wait {
    my ($h) = @_;
    waitpid $h->{pid}, 0;
    my $status = $?;
    @running = grep { $_ != $h } @running;
    my $read = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> };
    my $out = $read->($h->{out});
    die "node $h->{call} failed ($status): " . $read->("$h->{out}.err") . $out
        if $status || $out !~ /\S/;
    return json_decode($out);
}

sub client { client_wait(client_start(@_)) }

END { kill 'TERM', map { $_->{pid} } @running if @running }

# what reached Ollama: "METHOD PATH who" for each record, where who is the
# who=NAME the client's text carried
sub served {
    join "\n", map {
        my $who = json_encode($_->{body} // '') =~ /who=([\w-]+)/ ? " $1" : '';
        "$_->{method} $_->{path}$who"
    } @{ standin_requests() };
}

# the access log's "source key" of each request, in the order they ended
# (the chat's logins left out)
sub logged {
    join "\n", map { m{"(\S+ \S+) HTTP/1\.1" (\d+) .*source=(\S+) .*key=(\S+)} ? "$1 $2 $3 $4" : $_ }
               grep { !m{"POST /auth/token } }
               split /\n/, access_log_text('seadragon.access.log');
}

run_tests();

__DATA__

=== TEST 1: the ollama package lists, chats (whole and streamed), generates and embeds through TLS with a key
--- client
    my $key = key('coding-ollama');
    my $list = client('ollama-list', key => $key);
    my $chat = client('ollama-chat', key => $key, text => 'who=chat');
    my $stream = client('ollama-chat-stream', key => $key, text => 'who=stream');
    my $gen = client('ollama-generate', key => $key, text => 'who=generate');
    my $embed = client('ollama-embed', key => $key, text => 'who=embed');
    my @auth = grep { exists $_->{headers}{authorization} } @{ standin_requests() };
    join "\n",
        "list: @{ $list->{models} }",
        "chat: $chat->{model} $chat->{role} '$chat->{content}' done=$chat->{done} eval_count=$chat->{eval_count}",
        "stream: " . join('|', @{ $stream->{parts} }) . " done=$stream->{done} $stream->{done_reason}",
        "generate: $gen->{model} '$gen->{response}' done=$gen->{done}",
        "embed: $embed->{model} vectors=$embed->{vectors} dimensions=$embed->{dimensions} norm=$embed->{norm}",
        "keys that reached Ollama: " . scalar(@auth),
        served(), logged();
--- client_output
list: llama3:70b nomic-embed-text:latest
chat: llama3:70b assistant 'tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 ' done=1 eval_count=8
stream: tok1 |tok2 |tok3 |tok4 |tok5 |tok6 |tok7 |tok8 | done=1 stop
generate: llama3:70b 'tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 ' done=1
embed: nomic-embed-text vectors=2 dimensions=8 norm=1
keys that reached Ollama: 0
GET /api/tags
POST /api/chat chat
POST /api/chat stream
POST /api/generate generate
POST /api/embed embed
GET /api/tags 200 coding coding-ollama
POST /api/chat 200 coding coding-ollama
POST /api/chat 200 coding coding-ollama
POST /api/generate 200 coding coding-ollama
POST /api/embed 200 coding coding-ollama



=== TEST 2: the openai package lists models, completes chats (whole and streamed) and embeds against /v1
--- client
    my $key = key('chat-openai');
    my $models = client('openai-models', key => $key);
    my $chat = client('openai-chat', key => $key, text => 'who=chat');
    my $stream = client('openai-chat-stream', key => $key, text => 'who=stream');
    my $embed = client('openai-embeddings', key => $key, text => 'who=embed');
    my @auth = grep { exists $_->{headers}{authorization} } @{ standin_requests() };
    join "\n",
        "models: " . join(', ', @{ $models->{models} }),
        "chat: $chat->{object} $chat->{model} $chat->{role} '$chat->{content}' $chat->{finish_reason} tokens=$chat->{completion_tokens}",
        "stream: " . join('|', @{ $stream->{parts} }) . " $stream->{finish_reason}",
        "embeddings: $embed->{object} vectors=$embed->{vectors} dimensions=$embed->{dimensions} norm=$embed->{norm}",
        "keys that reached Ollama: " . scalar(@auth),
        served(), logged();
--- client_output
models: llama3:70b model library, nomic-embed-text:latest model library
chat: chat.completion llama3:70b assistant 'tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 ' stop tokens=8
stream: tok1 |tok2 |tok3 |tok4 |tok5 |tok6 |tok7 |tok8  stop
embeddings: list vectors=2 dimensions=8 norm=1
keys that reached Ollama: 0
GET /v1/models
POST /v1/chat/completions chat
POST /v1/chat/completions stream
POST /v1/embeddings embed
GET /v1/models 200 chat -
POST /v1/chat/completions 200 chat -
POST /v1/chat/completions 200 chat -
POST /v1/embeddings 200 chat -



=== TEST 3: clients of both packages at once with different keys are served by priority, first come first served within one
--- timeout: 30
--- client
    my $hold = tls_hold();
    my @calls = (
        ['openai-embeddings',  'api-first',     'who=api-first'],
        ['ollama-generate',    'api-second',    'who=api-second'],
        ['openai-chat-stream', 'chat-openai2',  'who=chat-first'],
        ['ollama-chat-stream', 'coding-ollama2', 'who=coding'],
        ['ollama-chat',        'chat-ollama',   'who=chat-second'],
    );
    my @h;
    my $n = 1;
    for my $c (@calls) {
        my ($call, $name, $text) = @$c;
        push @h, client_start($call, key => key($name), text => $text);
        $n++;
        wait_until(sub { queued_count() == $n }, "$name to queue", 20);
    }
    standin_release();
    my @r = map { client_wait($_) } @h;
    wait_all($hold);
    my $s = standin_stats();
    join "\n", served(),
        "embeddings: vectors=$r[0]{vectors}",
        "generate: '$r[1]{response}'",
        "openai stream: " . scalar(@{ $r[2]{parts} }) . " parts $r[2]{finish_reason}",
        "ollama stream: " . scalar(@{ $r[3]{parts} }) . " parts done=$r[3]{done}",
        "ollama chat: '$r[4]{content}'",
        "served=$s->{served} peak=$s->{peak}";
--- client_output
POST /api/chat
POST /api/chat coding
POST /v1/chat/completions chat-first
POST /api/chat chat-second
POST /v1/embeddings api-first
POST /api/generate api-second
embeddings: vectors=2
generate: 'tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 '
openai stream: 8 parts stop
ollama stream: 9 parts done=1
ollama chat: 'tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 '
served=6 peak=1



=== TEST 4: a wrong key is each client's own authentication error, and nothing reaches Ollama
--- client
    my $o = client('ollama-chat', key => 'sd-not-a-key');
    my $a = client('openai-chat', key => 'sd-not-a-key');
    my $m = client('openai-models', key => 'sd-not-a-key');
    join "\n",
        "ollama: $o->{error}{name} $o->{error}{status} $o->{error}{message}",
        "openai: $a->{error}{name} $a->{error}{status} " . ($a->{error}{message} =~ /invalid API key/ ? 'invalid API key' : $a->{error}{message})
            . " type=" . ($a->{error}{type} // 'none'),
        "openai models: $m->{error}{name} $m->{error}{status} type=" . ($m->{error}{type} // 'none'),
        "ollama saw " . scalar(@{ standin_requests() });
--- client_output
ollama: ResponseError 401 invalid API key
openai: AuthenticationError 401 invalid API key type=authentication_error
openai models: AuthenticationError 401 type=authentication_error
ollama saw 0



=== TEST 5: the README's three-line clients work as written
--- client
    $modules //= node_modules();
    open my $fh, '<', "$repo/README.md" or die $!;
    my $readme = do { local $/; <$fh> };
    my @snippets = $readme =~ /^```js\n(.*?)^```/gms;
    my @out;
    for my $pkg (qw(ollama openai)) {
        my ($code) = grep { /from '\Q$pkg\E'/ } @snippets or die "no $pkg snippet in README.md";
        my @lines = grep { /\S/ } split /\n/, $code;
        die "the $pkg snippet has " . scalar(@lines) . " lines, not 3" unless @lines == 3;
        $code =~ s{https://api\.example\.com}{https://api.example.com:$ENV{TEST_NGINX_TLS_PORT}}g
            or die "the $pkg snippet does not use https://api.example.com";
        my $file = "$modules/../readme-$pkg.mjs";
        open my $w, '>', $file or die $!;
        print $w $code, "console.log(JSON.stringify(reply))\n";
        close $w;
        local $ENV{NODE_EXTRA_CA_CERTS} = tls_certificates()->{ca};
        local $ENV{SEADRAGON_KEY} = key("api-readme-$pkg");
        my $json = `node --require '$repo/t/node/example-hosts.cjs' '$file' 2>&1`;
        die "the $pkg snippet failed: $json" if $?;
        my $r = json_decode($json);
        push @out, "$pkg: " . ($r->{message} // $r->{choices}[0]{message})->{content};
    }
    join "\n", @out, logged();
--- client_output
ollama: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 
openai: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 
POST /api/chat 200 api api-readme-ollama
POST /v1/chat/completions 200 api api-readme-openai
