# The chat page (conf/html/chat.html) in headless Chromium, driven over the
# DevTools protocol (--remote-debugging-pipe: JSON messages on fds 3 and 4,
# no WebSocket): a person logs in with a user of the store, picks a model
# of /api/tags, and reads the stand-in's answer as it streams in; while the
# gate is held the page says it waits in line, and once the answer comes,
# where it was in line (X-Queue-Position, X-Queue-Wait-Time).  A wrong
# password, an expired token, a disabled user and a token the API refuses
# send the person back to the login form with the server's words, and no
# token stays in the tab.  Screenshots are kept in t/servroot/058-chat-page/.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins qw(user_add jwt_secret);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url decode_base64);

if ($> == 0 && !-x '/usr/bin/chromium') {
    system("$ENV{PWD}/scripts/install-deps chromium >/dev/null 2>&1");
}

if (!-x '/usr/bin/chromium' || !-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "needs Debian's chromium and build/seadragon-store");
}

# the page's models: mistral fails mid-stream, phi3 at once, qwen pauses
standin_options('--extra-model mistral:7b --extra-model phi3:mini --extra-model qwen:0.5b');

our $StoreDir = store_init();
sub tool { store_tool(@_) }

user_add('alice', 'chat', 'correct horse');
user_add('carol', 'chat', 'carol secret');
user_add('dave', 'chat', 'dave secret');

# The chat host as conf/seadragon-tls.conf has it: the page at /, the
# logins at /auth/, Ollama's API at /api/.  The chat source takes a
# logged-in user only ("login"); what comes without a credential (the
# harness's own holds) is the default source's.
our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source chat priority=2 login;
    seadragon_source anyone priority=2;
    map $seadragon_model $standin_fail {
        default       "";
        "mistral:7b"  error-mid;
        "phi3:mini"   500;
    }
    map $seadragon_model $standin_pause {
        default       "";
        "qwen:0.5b"   3;
    }
    log_format page '$request_method $uri $status';
_EOC_

our $config = <<'_EOC_';
    access_log logs/page.log page;
    location = / {
        root         $TEST_NGINX_REPO/conf/html/;
        try_files    /chat.html =404;
        default_type text/html;
    }
    location /auth/ {
        seadragon_auth ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_set_header X-Standin-Fail $standin_fail;
        proxy_set_header X-Standin-Pause-After $standin_pause;
        proxy_buffering off;
        add_header X-Queue-Wait-Time $seadragon_queue_wait always;
        add_header X-Queue-Position  $seadragon_queue_position always;
    }
    location /t/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});


# Chromium over the DevTools protocol on a pipe.
package CDP {
    use POSIX ();
    use Fcntl ();
    use IO::Select ();
    use File::Temp ();
    use Time::HiRes ();

    sub new {
        my ($class, %a) = @_;
        my $self = bless { id => 0, buf => '', profile => File::Temp->newdir() }, $class;
        pipe(my $cmd_r, my $cmd_w) or die "pipe: $!";
        pipe(my $ev_r, my $ev_w) or die "pipe: $!";
        my $log = Test::Seadragon::servroot() . '/chromium.log';
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            setpgrp(0, 0);
            my $in = fcntl($cmd_r, Fcntl::F_DUPFD(), 10);
            my $out = fcntl($ev_w, Fcntl::F_DUPFD(), 10);
            POSIX::dup2($in, 3);
            POSIX::dup2($out, 4);
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', $log;
            open STDERR, '>&', \*STDOUT;
            exec '/usr/bin/chromium', '--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--remote-debugging-pipe',
                 "--user-data-dir=$self->{profile}", 'about:blank';
            POSIX::_exit(127);
        }
        close $cmd_r;
        close $ev_w;
        $cmd_w->autoflush(1);
        @$self{qw(pid in out)} = ($pid, $cmd_w, $ev_r);
        my $t = $self->call('Target.createTarget', { url => 'about:blank' });
        $self->{session} = $self->call('Target.attachToTarget',
            { targetId => $t->{targetId}, flatten => \1 })->{sessionId};
        $self->send('Page.enable');
        $self->send('Runtime.enable');
        $self->viewport($a{width} // 1000, $a{height} // 760);
        return $self;
    }

    # one command to the browser, or to the page's session; its result
    sub call {
        my ($self, $method, $params, $session) = @_;
        my $id = ++$self->{id};
        my $msg = { id => $id, method => $method, params => $params // {} };
        $msg->{sessionId} = $session if $session;
        syswrite $self->{in}, Test::Seadragon::json_encode($msg) . "\0";
        my $deadline = Time::HiRes::time() + 30;
        while (1) {
            while ((my $at = index $self->{buf}, "\0") >= 0) {
                my $m = Test::Seadragon::json_decode(substr $self->{buf}, 0, $at);
                substr($self->{buf}, 0, $at + 1) = '';
                next unless defined $m->{id} && $m->{id} == $id;
                die "CDP $method: $m->{error}{message}\n" if $m->{error};
                return $m->{result};
            }
            my $left = $deadline - Time::HiRes::time();
            die "CDP $method: no answer from Chromium\n" if $left <= 0;
            IO::Select->new($self->{out})->can_read($left) or next;
            sysread($self->{out}, $self->{buf}, 65536, length $self->{buf})
                or die "CDP $method: Chromium ended\n";
        }
    }

    sub send { my ($self, $method, $params) = @_; $self->call($method, $params, $self->{session}) }

    sub viewport {
        my ($self, $w, $h) = @_;
        $self->send('Emulation.setDeviceMetricsOverride',
            { width => $w, height => $h, deviceScaleFactor => 1, mobile => ($w < 500 ? \1 : \0) });
    }

    # a script's value in the page (its promise awaited)
    sub js {
        my ($self, $expr) = @_;
        my $r = $self->send('Runtime.evaluate',
            { expression => $expr, awaitPromise => \1, returnByValue => \1 });
        die "in the page: $r->{exceptionDetails}{exception}{description}\n"
            if $r->{exceptionDetails};
        return $r->{result}{value};
    }

    sub wait_js {
        my ($self, $expr, $what) = @_;
        Test::Seadragon::wait_until(sub { $self->js($expr) }, $what, 15);
    }

    sub open {
        my ($self, $url) = @_;
        $self->send('Page.navigate', { url => $url });
        $self->wait_js('document.readyState === "complete" && document.body.dataset.state !== "loading"',
                       'the page to load');
    }

    sub screenshot {
        my ($self, $file) = @_;
        my $png = $self->send('Page.captureScreenshot', { format => 'png' })->{data};
        open my $fh, '>:raw', $file or die "$file: $!";
        print $fh MIME::Base64::decode_base64($png);
        close $fh;
        Test::More::diag("chat page screenshot: $file");
    }

    sub DESTROY {
        my ($self) = @_;
        return unless $self->{pid};
        eval { $self->call('Browser.close') };
        close $self->{in};
        Test::Seadragon::reap($self->{pid}, 5) or kill 'KILL', -$self->{pid};
        kill 'KILL', -$self->{pid};
        Test::Seadragon::reap($self->{pid}, 2);
        # the group's processes that outlived the browser were ours to reap
        for my $child (Test::Seadragon::children_of($$)) {
            my $stat = Test::Seadragon::read_file("/proc/$child/stat") // next;
            my ($group) = $stat =~ /\)\s+\S+\s+\d+\s+(\d+)/ or next;
            waitpid $child, 0 if $group == $self->{pid};
        }
        $self->{pid} = 0;
    }
}

sub page_url { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/" }

sub browser {
    my $b = CDP->new(@_);
    $b->open(page_url());
    return $b;
}

# a person logs in through the form
sub log_in {
    my ($b, $name, $password) = @_;
    $b->js('document.getElementById("username").value = ' . json_encode($name)
           . '; document.getElementById("password").value = ' . json_encode($password)
           . '; document.getElementById("login").requestSubmit(); 1');
}

# ... and writes a message, and sends it
sub say_this {
    my ($b, $text, $model) = @_;
    $b->js(($model ? 'document.getElementById("model").value = ' . json_encode($model) . '; ' : '')
           . 'document.getElementById("prompt").value = ' . json_encode($text)
           . '; document.getElementById("send").click(); 1');
}

# what the person reads: the state, who, the models, the conversation
sub seen {
    my ($b) = @_;
    return $b->js(<<'_JS_');
(() => {
  const $ = (id) => document.getElementById(id);
  const s = $("status");
  return {
    state: document.body.dataset.state,
    busy: document.body.dataset.busy,
    who: $("whoami").textContent,
    login_error: $("login-error").hidden ? "" : $("login-error").textContent,
    chat_error: $("chat-error").hidden ? "" : $("chat-error").textContent,
    models: [...$("model").options].map((o) => o.value).join(","),
    model: $("model").value,
    messages: [...document.querySelectorAll("#messages .msg")].map((m) =>
      m.dataset.role + (m.classList.contains("failed") ? "(failed)" : "") + ": "
      + m.querySelector(".content").textContent),
    status: s.textContent.replace(/\u2026/g, "..."),
    position: s.dataset.position || "",
    wait: s.dataset.wait || "",
    stop: $("stop").disabled ? "off" : "on",
    prompt: $("prompt").value,
    token: sessionStorage.getItem("seadragon-chat-token") || "",
    focus: document.activeElement ? document.activeElement.id : "",
  };
})()
_JS_
}

sub jwt {
    my ($key, $claims) = @_;
    my $input = encode_base64url('{"alg":"HS256","typ":"JWT"}') . '.' . encode_base64url($claims);
    return "$input." . encode_base64url(hmac_sha256($input, $key));
}

sub token_of {
    my ($name, $password) = @_;
    my $r = request('POST /auth/token', body => "username=$name&password=" . ($password =~ s/ /+/gr),
                    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    die "login $name: $r->{status} $r->{body}" unless $r->{status} == 200;
    return json_decode($r->{body})->{access_token};
}

sub chats { grep { $_->{path} eq '/api/chat' } @{ standin_requests() } }

sub page_requests { grep { !m{^\S+ /(t/admin/|favicon\.ico )} } map { s{^GET /chat\.html }{GET / }r } split /\n/, access_log_text('page.log') }

run_tests();

__DATA__

=== TEST 1: log in, see the models, send two messages and read the streamed answers; the conversation goes with the second
--- timeout: 90
--- client
    my $b = browser();
    my $first = seen($b);
    log_in($b, 'alice', 'correct horse');
    $b->wait_js('document.body.dataset.state === "chat" && document.getElementById("model").options.length > 0',
                'the chat and its models');
    my $in = seen($b);
    say_this($b, 'Why is the sky blue?');
    $b->wait_js('document.querySelector("#messages .assistant[data-done]")', 'the answer');
    my $one = seen($b);
    wait_until(sub { chats() == 1 }, 'the stand-in to record the chat');
    my @after_one = chats();
    say_this($b, 'And at sunset?');
    $b->wait_js('document.querySelectorAll("#messages .assistant[data-done]").length == 2', 'the second answer');
    my $two = seen($b);
    $b->screenshot(servroot() . '/chat-page.png');
    $b->viewport(390, 844);
    $b->screenshot(servroot() . '/chat-phone.png');
    my $wide = $b->js('document.documentElement.scrollWidth <= window.innerWidth');
    wait_until(sub { chats() == 2 }, 'the stand-in to record the second chat');
    my @c = chats();
    my $body = $c[-1]{body};
    $b->js('document.getElementById("logout").click(); 1');
    my $out = seen($b);
    undef $b;
    join "\n", "first: $first->{state} focus=$first->{focus} token=" . ($first->{token} ? 'yes' : 'none'),
        "in: $in->{state} who=$in->{who} models=$in->{models} model=$in->{model} focus=$in->{focus} token="
            . ($in->{token} =~ /^[\w-]+\.[\w-]+\.[\w-]+$/ ? 'a JWT' : "'$in->{token}'"),
        "one: @{ $one->{messages} }",
        "Ollama saw after one: " . scalar(@after_one) . " " . json_encode($after_one[0]{body}),
        "two: " . join(' | ', @{ $two->{messages} }),
        "the second carried: " . join(' | ', map { "$_->{role}: $_->{content}" } @{ $body->{messages} })
            . " stream=" . ($body->{stream} ? 'true' : 'false'),
        "Ollama saw: " . scalar(@c) . " chats",
        "status: $two->{status} stop=$two->{stop} busy='$two->{busy}'",
        "phone width fits: " . ($wide ? 'yes' : 'no'),
        "logged out: $out->{state} token=" . ($out->{token} ? 'kept' : 'none') . " messages=" . scalar(@{ $out->{messages} }),
        "screenshots: " . join(' ', map { -s servroot() . "/$_" > 5000 ? 'kept' : 'missing' } qw(chat-page.png chat-phone.png));
--- client_output
first: login focus=username token=none
in: chat who=alice (chat) models=llama3:70b,mistral:7b,phi3:mini,qwen:0.5b,nomic-embed-text:latest model=llama3:70b focus=prompt token=a JWT
one: user: Why is the sky blue? assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 
Ollama saw after one: 1 {"messages":[{"content":"Why is the sky blue?","role":"user"}],"model":"llama3:70b","stream":true}
two: user: Why is the sky blue? | assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8  | user: And at sunset? | assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 
the second carried: user: Why is the sky blue? | assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8  | user: And at sunset? stream=true
Ollama saw: 2 chats
status: No wait. stop=off busy=''
phone width fits: yes
logged out: login token=none messages=0
screenshots: kept kept



=== TEST 2: the answer shows token by token: with the stand-in's stream paused after three, the page shows those three, then the rest
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'alice', 'correct horse');
    $b->wait_js('document.getElementById("model").options.length > 0', 'the models');
    say_this($b, 'Count for me', 'qwen:0.5b');
    $b->wait_js('(document.querySelector("#messages .assistant .content") || {}).textContent === "tok1 tok2 tok3 "',
                'three tokens on the page');
    my $mid = seen($b);
    my $active = standin_stats()->{active};
    standin_release();
    $b->wait_js('document.querySelector("#messages .assistant[data-done]")', 'the answer');
    my $end = seen($b);
    join "\n", "paused: busy=$mid->{busy} stop=$mid->{stop} ollama streaming=$active | " . join(' | ', @{ $mid->{messages} }),
        "end: busy='$end->{busy}' stop=$end->{stop} | " . join(' | ', @{ $end->{messages} });
--- client_output
paused: busy=streaming stop=on ollama streaming=1 | user: Count for me | assistant: tok1 tok2 tok3 
end: busy='' stop=off | user: Count for me | assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 



=== TEST 3: while the gate is held the page shows its place in line (GET /auth/queue); released, the answer comes with the place in line it had
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'alice', 'correct horse');
    $b->wait_js('document.getElementById("model").options.length > 0', 'the models');
    my $hold = hold_gate();
    my $first = chat('api1');
    wait_until(sub { queued_count() == 2 }, 'another chat to wait');
    say_this($b, 'Are you there?');
    wait_until(sub { queued_count() == 3 }, "the page's chat to wait");
    $b->wait_js('document.body.dataset.busy === "parked" && /\(\d+ s\)/.test(document.getElementById("status").textContent)'
                . ' && document.getElementById("status").dataset.live !== ""',
                'the page to wait a second and learn its place');
    my $parked = seen($b);
    my $asked = grep { m{^GET /auth/queue 200$} } page_requests();
    $b->screenshot(servroot() . '/chat-waiting.png');
    my $reached = scalar chats();
    standin_release();
    wait_all($hold, $first);
    $b->wait_js('document.querySelector("#messages .assistant[data-done]")', 'the answer');
    my $after = seen($b);
    wait_until(sub { chats() == 3 }, "the stand-in to record the page's chat");
    (my $status = $after->{status}) =~ s/waited [\d.]+ s/waited S s/;
    join "\n", "parked: busy=$parked->{busy} stop=$parked->{stop} status=" . ($parked->{status} =~ s/\d+ s/N s/r)
            . " position='$parked->{position}' | " . join(' | ', @{ $parked->{messages} }),
        "asked its place: " . ($asked ? 'yes' : 'no') . ", Ollama had seen: $reached (the hold)",
        "after: busy='$after->{busy}' position=$after->{position} waited " . ($after->{wait} > 0 ? 'some ms' : "'$after->{wait}'")
            . " status=$status",
        "answer: " . join(' | ', @{ $after->{messages} }),
        "Ollama's order: " . join(',', map { $_->{tag} // 'page' } chats()),
        "screenshot: " . (-s servroot() . '/chat-waiting.png' > 5000 ? 'kept' : 'missing');
--- client_output
parked: busy=parked stop=on status=Number 2 in line (N s)... position='' | user: Are you there?
asked its place: yes, Ollama had seen: 1 (the hold)
after: busy='' position=2 waited some ms status=Number 2 in line on arrival; waited S s.
answer: user: Are you there? | assistant: tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 
Ollama's order: hold,api1,page
screenshot: kept



=== TEST 4: Stop while parked takes the request out of the line; nothing reaches Ollama, and the next message goes alone
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'alice', 'correct horse');
    $b->wait_js('document.getElementById("model").options.length > 0', 'the models');
    my $hold = hold_gate();
    say_this($b, 'Never mind');
    wait_until(sub { queued_count() == 2 }, "the page's chat to wait");
    $b->js('document.getElementById("stop").click(); 1');
    $b->wait_js('document.body.dataset.busy === ""', 'the page to stop');
    my $stopped = seen($b);
    wait_until(sub { json_decode(request('GET /t/admin/queue')->{body})->{queue_length} == 0 },
               'the line to be empty');
    my $s = json_decode(request('GET /t/admin/stats')->{body})->{sources}{chat}{aborted};
    standin_release();
    wait_all($hold);
    my $reached = scalar chats();
    say_this($b, 'Hello');
    $b->wait_js('document.querySelector("#messages .assistant[data-done]")', 'the answer');
    wait_until(sub { chats() == 2 }, 'the stand-in to record the chat');
    my @c = chats();
    join "\n", "stopped: status=$stopped->{status} stop=$stopped->{stop} | " . join(' | ', @{ $stopped->{messages} }),
        "chat source: aborted parked=$s->{parked} streaming=$s->{streaming}",
        "Ollama saw: $reached (the hold)",
        "then: " . json_encode($c[-1]{body}{messages});
--- client_output
stopped: status=Stopped: the request left the line. stop=off | user(failed): Never mind
chat source: aborted parked=1 streaming=0
Ollama saw: 1 (the hold)
then: [{"content":"Hello","role":"user"}]



=== TEST 5: Ollama's errors are shown as messages: at once (the message goes back into the box), and mid-stream (what came stays)
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'alice', 'correct horse');
    $b->wait_js('document.getElementById("model").options.length > 0', 'the models');
    say_this($b, 'Crash', 'phi3:mini');
    $b->wait_js('document.querySelector("#messages .error") && document.body.dataset.busy === ""', 'the error');
    my $now = seen($b);
    $b->js('document.getElementById("new-chat").click(); 1');
    say_this($b, 'Half', 'mistral:7b');
    $b->wait_js('document.querySelector("#messages .error") && document.body.dataset.busy === ""', 'the error');
    my $mid = seen($b);
    say_this($b, 'Again', 'llama3:70b');
    $b->wait_js('document.querySelectorAll("#messages .assistant[data-done]").length == 2 && document.body.dataset.busy === ""',
                'the answer');
    wait_until(sub { chats() == 3 }, 'the stand-in to record the chats');
    my @c = chats();
    join "\n", "at once: " . join(' | ', @{ $now->{messages} }) . " | prompt=$now->{prompt}",
        "mid-stream: " . join(' | ', @{ $mid->{messages} }),
        "the next carried: " . join(' | ', map { "$_->{role}: $_->{content}" } @{ $c[-1]{body}{messages} });
--- client_output
at once: user(failed): Crash | error: llama runner process has terminated: exit status 2 | prompt=Crash
mid-stream: user: Half | assistant: tok1 tok2  | error: an error was encountered while running the model
the next carried: user: Half | assistant: tok1 tok2  | user: Again



=== TEST 6: a wrong password and an unknown user show the server's error, and no token is kept; the page asked nothing else
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'alice', 'wrong horse');
    $b->wait_js('!document.getElementById("login-error").hidden', 'the error');
    my $wrong = seen($b);
    $b->js('document.getElementById("login-error").hidden = true; 1');
    log_in($b, 'mallory', 'correct horse');
    $b->wait_js('!document.getElementById("login-error").hidden', 'the error');
    my $unknown = seen($b);
    my $password = $b->js('document.getElementById("password").value');
    my $storage = $b->js('sessionStorage.length');
    undef $b;
    join "\n", "wrong: $wrong->{state} '$wrong->{login_error}' token=" . ($wrong->{token} ? 'kept' : 'none') . " focus=$wrong->{focus}",
        "unknown: $unknown->{state} '$unknown->{login_error}' token=" . ($unknown->{token} ? 'kept' : 'none'),
        "password field: '$password', session storage: $storage",
        "the page asked: " . join(', ', page_requests());
--- client_output
wrong: login 'Incorrect username or password' token=none focus=password
unknown: login 'Incorrect username or password' token=none
password field: '', session storage: 0
the page asked: GET / 200, POST /auth/token 401, POST /auth/token 401



=== TEST 7: a tab whose token expired, or whose user was disabled since, comes back to the login form with the server's words
--- timeout: 90
--- client
    my $now = time;
    my $expired = jwt(jwt_secret(), sprintf('{"sub":"alice","src":"chat","iat":%d,"exp":%d}', $now - 100, $now - 10));
    my $b = browser();
    $b->js("sessionStorage.setItem('seadragon-chat-token', '$expired'); 1");
    $b->open(page_url());
    my $exp = seen($b);
    my $carol = token_of('carol', 'carol secret');
    $b->js("sessionStorage.setItem('seadragon-chat-token', '$carol'); 1");
    $b->open(page_url());
    my $good = seen($b);
    tool('user disable carol');
    $b->open(page_url());
    my $dis = seen($b);
    tool('user enable carol');
    $b->screenshot(servroot() . '/chat-login.png');
    undef $b;
    join "\n", map({ "$_->[0]: $_->[1]{state} '$_->[1]{login_error}' token=" . ($_->[1]{token} ? 'kept' : 'none') }
                   ['expired', $exp], ['carol', $good], ['disabled', $dis]),
        "the page asked: " . join(', ', grep { !m{^GET / } } page_requests());
--- client_output
expired: login 'Logged out: Could not validate credentials' token=none
carol: chat '' token=kept
disabled: login 'Logged out: Inactive user' token=none
the page asked: GET /auth/me 401, POST /auth/token 200, GET /auth/me 200, GET /api/tags 200, GET /auth/me 403



=== TEST 8: a token the API refuses on /api/chat sends the person back to the login form with the API's words; the message waits in the box
The chat source takes a logged-in user only: a disabled user's token is
refused there at the next request.
--- timeout: 90
--- client
    my $b = browser();
    log_in($b, 'dave', 'dave secret');
    $b->wait_js('document.getElementById("model").options.length > 0', 'the models');
    my $t = $b->js('sessionStorage.getItem("seadragon-chat-token")');
    tool('user disable dave');
    say_this($b, 'Still here?');
    $b->wait_js('document.body.dataset.state === "login"', 'the login form');
    my $back = seen($b);
    my $r = request('POST /api/chat', body => '{"model":"llama3:70b","messages":[],"stream":true}',
                    headers => { Authorization => "Bearer $t" });
    my $api = json_decode($r->{body})->{error};
    tool('user enable dave');
    join "\n", "back: $back->{state} token=" . ($back->{token} ? 'kept' : 'none') . " prompt=$back->{prompt} messages="
            . scalar(@{ $back->{messages} }),
        "the API's words: " . ($back->{login_error} eq "Logged out: $api" && $r->{status} == 401 ? 'yes' : "no: '$back->{login_error}' vs $r->{status} '$api'"),
        "Ollama saw: " . scalar(chats()) . " chats";
--- client_output
back: login token=none prompt=Still here? messages=0
the API's words: yes
Ollama saw: 0 chats
