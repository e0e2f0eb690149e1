# The admin page (conf/html/admin.html) in headless Chromium: it shows the
# gate, what holds it, the queue in dispatch order and the counters, live;
# a screenshot is kept in t/servroot/014-admin-page/admin-page.png.  A
# person logs in with a user of the admin source (TEST 9, admin-login.png).
use lib 't/lib';
use Test::Seadragon;
use File::Temp ();

if ($> == 0 && !-x '/usr/bin/chromium') {
    system("$ENV{PWD}/scripts/install-deps chromium >/dev/null 2>&1");
}

if (!-x '/usr/bin/chromium' || !-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "needs Debian's chromium and build/seadragon-store");
}

store_init();
sub tool { store_tool(@_) }
our $admin = tool('key create ops --source admin');
our $alice = tool('key create alice --source coding');

# Chromium, headless and offline, given a few virtual seconds to poll
sub chromium {
    my ($url, @what) = @_;
    my $profile = File::Temp->newdir();
    my @cmd = ('/usr/bin/chromium', '--headless', '--no-sandbox', '--disable-gpu',
               '--disable-quic', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync',
               "--user-data-dir=$profile", '--virtual-time-budget=2500', @what, $url);
    my $out = `timeout 60 @cmd 2>/dev/null`;
    die "chromium failed ($?)" if $? && !@what;
    return $out;
}

# The page as a person uses it: a page of the same origin (driver.html, in
# the server's html/) opens it in a frame, types the key into its form if
# one is given, and copies what the frame shows into its own DOM, for
# --dump-dom.  What to do comes in the driver's fragment, which no server
# sees.
our $driver = <<'_EOH_';
<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>body { margin: 0; overflow: hidden } #mirror { display: none }</style></head>
<body data-ready="0">
<iframe id="page" style="width: 100%; height: 100vh; border: 0"></iframe>
<div id="mirror"></div>
<script>
"use strict";
const want = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const d = frame.contentDocument;
  if (want.key !== null) {
    d.getElementById("key").value = want.key;
    d.getElementById("key-form").requestSubmit();
  }
  if (want.login) {
    d.getElementById("login-user").value = want.login[0];
    d.getElementById("login-password").value = want.login[1];
    d.getElementById("login-form").requestSubmit();
  }
  let out = false;
  setInterval(() => {
    if (want.logout && !out && d.body.dataset.ready === "1") {
      out = true;
      d.getElementById("logout").click();
    }
    document.body.dataset.stored = frame.contentWindow.sessionStorage.length;
    document.getElementById("mirror").innerHTML = d.body.innerHTML;
    document.body.dataset.ready = d.body.dataset.ready;
    document.body.dataset.href = frame.contentWindow.location.href;
  }, 50);
}, { once: true });
frame.src = want.page;
</script>
</body></html>
_EOH_

sub page_url {
    my ($key, $page, $login, $logout) = @_;
    open my $fh, '>', html_dir() . '/driver.html' or die "driver.html: $!";
    print $fh $driver;
    close $fh;
    (my $want = json_encode({ key => $key, page => $page // '/api/admin/page',
                              ($login ? (login => $login) : ()),
                              ($logout ? (logout => 1) : ()) }))
        =~ s/([^A-Za-z0-9_.~-])/sprintf("%%%02X", ord $1)/ge;
    return "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/driver.html#$want";
}

# what a person reads on the page, from its DOM; with $login ([user,
# password]) the driver logs in with the page's login form instead
sub page {
    my ($key, $page, $login, $logout) = @_;
    my $dom = chromium(page_url(@_ ? $key : $admin, $page, $login, $logout), '--dump-dom');
    my %p;
    ($p{stored}) = $dom =~ /<body [^>]*data-stored="(\d+)"/;
    ($p{login_state}) = $dom =~ /<span id="login-state">([^<]*)</;
    ($p{ready}) = $dom =~ /<body data-ready="([^"]*)"/;
    ($p{href}) = $dom =~ /<body [^>]*data-href="([^"]*)"/;
    $p{href} =~ s/&amp;/&/g if defined $p{href};
    ($p{gate}) = $dom =~ /<span id="gate-state"[^>]*>([^<]*)</;
    ($p{busy}) = $dom =~ /<span id="gate-busy">([^<]*)</;
    ($p{capacity}) = $dom =~ /<span id="gate-capacity">([^<]*)</;
    ($p{error}) = $dom =~ /<div id="error"[^>]*>([^<]*)</;
    my ($running) = $dom =~ m{<table id="running">.*?<tbody>(.*?)</tbody>}s;
    my ($queue) = $dom =~ m{<table id="queue">.*?<tbody>(.*?)</tbody>}s;
    my ($counters) = $dom =~ m{<table id="counters">.*?<tbody>(.*?)</tbody>}s;
    $p{running} = [ $running =~ /<tr data-id="(\d+)"/g ];
    $p{queue} = [];
    while ($queue =~ /<tr data-id="(\d+)" data-source="(\w+)" data-position="(\d+)">(.*?)<\/tr>/g) {
        my ($id, $src, $pos, $cells) = ($1, $2, $3, $4);
        my ($wait) = $cells =~ /<td class="num time">([\d.]+) s</;
        push @{ $p{queue} }, "$pos:$src#$id";
        $p{wait}{$id} = $wait;
    }
    $p{empty_queue} = $queue =~ /nobody waits/ ? 1 : 0;
    while ($queue =~ /<tr data-id="(\d+)"[^>]*>(.*?)<\/tr>/g) {
        my ($id, $cells) = ($1, $2);
        my ($tenant) = $cells =~ /<td class="tenant">([^<]*)</;
        my ($resident) = $cells =~ /<td class="resident (?:yes|no)">([^<]*)</;
        $p{queue_tenant}{$id} = $tenant;
        $p{queue_resident}{$id} = $resident;
    }
    # the chart: its samples' times, and each series' values and points
    if ($dom =~ m{<svg id="chart"([^>]*)>(.*?)</svg>}s) {
        my ($attrs, $inner) = ($1, $2);
        my %a = $attrs =~ /([\w-]+)="([^"]*)"/g;
        $p{chart} = { samples => $a{'data-samples'}, max_waiting => $a{'data-max-waiting'},
                      max_wait => $a{'data-max-wait'},
                      times => [ split /,/, $a{'data-times'} // '' ],
                      text => [ $inner =~ /<text[^>]*>([^<]*)</g ] };
        while ($inner =~ /<polyline ([^>]*)>/g) {
            my %l = $1 =~ /([\w-]+)="([^"]*)"/g;
            $p{chart}{ $l{class} } = { values => [ split /,/, $l{'data-values'} ],
                                       points => [ map { [ split /,/ ] } split / /, $l{points} ] };
        }
    }
    my ($tenants) = $dom =~ m{<table id="tenants">.*?<tbody>(.*?)</tbody>}s;
    $p{empty_tenants} = $tenants =~ /<td class="empty"[^>]*>([^<]*)</ ? $1 : '';
    while ($tenants =~ /<tr data-source="(\w+)" data-tenant="([^"]+)">(.*?)<\/tr>/g) {
        my ($src, $who, $cells) = ($1, $2, $3);
        my @n = map { $cells =~ /<td class="num $_">(\d+)</ ? $1 : '?' }
                qw(weight tokens waiting running);
        my ($bar) = $cells =~ /<span class="bar" style="width: ([\d.]+)%;?">/;
        my ($share) = $cells =~ /<\/span>([\d.]+) %</;
        $p{tenants}{"$src $who"} = join('/', @n) . " share=" . ($share // '?')
            . " bar=" . (defined $bar ? sprintf('%.1f', $bar) : '?');
    }
    while ($counters =~ /<tr data-source="(\w+)">(.*?)<\/tr>/g) {
        my ($src, $cells) = ($1, $2);
        my ($received) = $cells =~ /<td class="num received">(\d+)</;
        my ($served) = $cells =~ /<td class="num served">(\d+)</;
        $p{counters}{$src} = "$received/$served";
    }
    my ($usage) = $dom =~ m{<table id="usage">.*?<tbody>(.*?)</tbody>}s;
    while ($usage =~ /<tr data-principal="([^"]+)">(.*?)<\/tr>/g) {
        my ($who, $cells) = ($1, $2);
        my @n = map { $cells =~ /<td class="num $_">(\d+)</ ? $1 : '?' }
                qw(requests prompt completion);
        $p{usage}{$who} = join '/', @n;
    }
    my ($models) = $dom =~ m{<table id="models">.*?<tbody>(.*?)</tbody>}s;
    while ($models =~ /<tr data-model="([^"]+)">(.*?)<\/tr>/g) {
        my ($model, $cells) = ($1, $2);
        ($p{tps}{$model}) = $cells =~ /<td class="num tps">([^<]*)</;
    }
    ($p{resident}) = $dom =~ /<span id="resident">([^<]*)</;
    my ($swaps) = $dom =~ m{<table id="swaps">.*?<tbody>(.*?)</tbody>}s;
    while ($swaps =~ /<tr data-model="([^"]+)">(.*?)<\/tr>/g) {
        my ($model, $cells) = ($1, $2);
        my @n = map { $cells =~ /<td class="$_">([^<]*)</ ? $1 : '?' }
                ('resident', 'num dispatched', 'num predicted', 'num loads');
        $p{swaps}{$model} = join '/', @n;
    }
    return \%p;
}

sub uri_escape { (my $s = shift) =~ s/([^A-Za-z0-9_.~-])/sprintf("%%%02X", ord $1)/ge; $s }

# A server of another origin that would answer the page, CORS and all, and
# logs whatever reaches it; and the access log of the page's own server.
our $other_http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=3;

    log_format page '$request_method $request_uri $status key=$seadragon_key_name site=$http_sec_fetch_site';

    server {
        listen 127.0.0.1:$TEST_NGINX_OTHER_PORT;
        server_name localhost;
        access_log logs/other.log page;
        add_header Access-Control-Allow-Origin * always;
        add_header Access-Control-Allow-Headers "Authorization, Content-Type" always;
        add_header Access-Control-Allow-Methods "GET, POST, DELETE" always;
        location = /evil.html { root html; }
        location / {
            if ($request_method = OPTIONS) { return 204; }
            default_type application/json;
            return 200 '{"zone":"x","gate":"open","capacity":1,"queue_length":0,"processing":0,"running":[],"entries":[],"sources":{}}';
        }
    }
_EOC_

our $other_config = <<'_EOC_';
    access_log logs/page.log page;
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html { root html; }
    location /api/admin/ { seadragon_admin ollama; }
    location /t/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
_EOC_

# every request the other server got, once a last one of ours is logged
sub other_requests {
    request('GET /last-one', port => $ENV{TEST_NGINX_OTHER_PORT});
    wait_until(sub { access_log_text('other.log') =~ m{^GET /last-one }m }, 'the last request to be logged');
    return grep { !m{^GET /last-one } } split /\n/, access_log_text('other.log');
}

# chat($tag): the harness's, of its defaults (one token)


run_tests();

__DATA__

=== TEST 1: the page shows the gate, the queue in dispatch order and the counters, live
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
--- config
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html {
        root html;
    }
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 60
--- client
    my $hold = hold_gate();
    my @h;
    my $n = 1;
    for my $tag (qw(api1 chat1 coding1)) {
        push @h, chat($tag);
        $n++;
        wait_until(sub { queued_count() == $n }, "$tag to queue");
    }

    my $first = page();
    chromium(page_url($admin), '--window-size=1280,900',
             '--screenshot=' . servroot() . '/admin-page.png');
    Test::More::diag("admin page screenshot: " . servroot() . "/admin-page.png");
    my $second = page();

    request('POST /api/admin/gate/pause', headers => { Authorization => "Bearer $admin" });
    my $paused = page();
    request('POST /api/admin/gate/resume', headers => { Authorization => "Bearer $admin" });

    my $refused = page('sd-not-a-key');

    standin_release();
    wait_all($hold, @h);
    my $after = page();

    my ($id) = $first->{queue}[0] =~ /#(\d+)$/;
    join "\n",
        "ready=$first->{ready} gate=$first->{gate} busy=$first->{busy}/$first->{capacity}",
        "running: @{ $first->{running} }",
        "queue: @{ $first->{queue} }",
        "counters: " . join(" ", map { "$_=$first->{counters}{$_}" } sort keys %{ $first->{counters} }),
        "waits tick: " . ($second->{wait}{$id} > $first->{wait}{$id} ? 'yes' : "no ($first->{wait}{$id} -> $second->{wait}{$id})"),
        "paused: $paused->{gate}",
        "wrong key: $refused->{ready} " . ($refused->{error} =~ /^401: invalid admin key/ ? 'error shown' : "'$refused->{error}'"),
        "after: empty=$after->{empty_queue} busy=$after->{busy} counters: "
            . join(" ", map { "$_=$after->{counters}{$_}" } sort keys %{ $after->{counters} }),
        "screenshot: " . (-s servroot() . '/admin-page.png' > 10000 ? 'kept' : 'missing');
--- client_output
ready=1 gate=open busy=1/1
running: 1
queue: 1:coding#4 2:chat#3 3:api#2
counters: admin=0/0 api=2/0 chat=1/0 coding=1/0
waits tick: yes
paused: paused
wrong key: error error shown
after: empty=1 busy=0 counters: admin=0/0 api=2/2 chat=1/1 coding=1/1
screenshot: kept



=== TEST 2: the page calls only its own origin: ?api= pointing elsewhere gets nothing, and the key travels only in a header
--- http_config eval: $::other_http_config
--- config eval: $::other_config
--- timeout: 60
--- client
    my $other = "http://127.0.0.1:$ENV{TEST_NGINX_OTHER_PORT}/";
    my @out;
    for my $query ('?api=' . uri_escape($other), "?api=//127.0.0.1:$ENV{TEST_NGINX_OTHER_PORT}/",
                   "?api=$other", '?key=sd-x&api=' . uri_escape($other))
    {
        my $p = page($admin, "/api/admin/page$query");
        push @out, "$query: ready=$p->{ready} gate=$p->{gate} address="
            . ($p->{href} =~ /\?/ ? $p->{href} : 'clean');
    }
    (my $shown = $out[0]) =~ s/^\S+/?api=OTHER/;
    my @other = other_requests();
    my @api = grep { m{^\S+ /api/admin/(?!page)} } split /\n/, access_log_text('page.log');
    join "\n", map({ s/\Q$ENV{TEST_NGINX_OTHER_PORT}\E/OTHER/gr } @out),
        "requests to the other server: " . scalar(@other) . (@other ? ": @other" : ''),
        "API requests of the page with the key in a header: "
            . ((grep { / key=ops / } @api) ? 'some' : 'none') . ", all 200: "
            . ((grep { / key=ops / && !/ 200 / } @api) ? 'no' : 'yes'),
        "the key in a URL: " . ((grep { index($_, $admin) >= 0 } split /\n/, access_log_text('page.log')) ? 'yes' : 'no');
--- client_output
?api=http%3A%2F%2F127.0.0.1%3AOTHER%2F: ready=1 gate=open address=clean
?api=//127.0.0.1:OTHER/: ready=1 gate=open address=clean
?api=http://127.0.0.1:OTHER/: ready=1 gate=open address=clean
?key=sd-x&api=http%3A%2F%2F127.0.0.1%3AOTHER%2F: ready=1 gate=open address=clean
requests to the other server: 0
API requests of the page with the key in a header: some, all 200: yes
the key in a URL: no



=== TEST 3: a key in the address (?key=) is not used, and is taken out of the address bar
--- http_config eval: $::other_http_config
--- config eval: $::other_config
--- timeout: 60
--- client
    my $p = page(undef, "/api/admin/page?key=$admin");
    my @api = grep { m{^\S+ /api/admin/(?!page)} } split /\n/, access_log_text('page.log');
    join "\n", "ready=$p->{ready} address=" . ($p->{href} =~ /\?/ ? 'still has the key' : 'clean'),
        "error: $p->{error}",
        "API requests: " . scalar(@api) . ", with a key: " . scalar(grep { / key=ops / } @api)
            . ", answered 401: " . scalar(grep { / 401 / } @api);
--- client_output_like
^ready=error address=clean
error: 401: admin key required \(enter an admin key above\); this address carried \?key=, which the page ignores: type the admin key into the form
API requests: (\d+), with a key: 0, answered 401: \1$



=== TEST 4: another site's page in Chromium (no-cors fetches, a form) cannot change the gate or the whitelist
The attacker's page is on http://localhost:OTHER, a different site from
http://127.0.0.1:PORT, and the /t/admin/ location lets 127.0.0.1 in by
its address alone: what a browser on an operator's machine carries.
--- http_config eval: $::other_http_config
--- config eval: $::other_config
--- timeout: 60
--- client
    my $target = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
    open my $fh, '>', html_dir() . '/evil.html' or die $!;
    print $fh <<"_EOH_";
<!DOCTYPE html><html><body>
<form method="post" action="$target/t/admin/gate/pause"></form>
<script>
fetch("$target/api/admin/gate/drain", { method: "POST", mode: "no-cors", body: "x" });
fetch("$target/t/admin/gate/drain", { method: "POST", mode: "no-cors" });
fetch("$target/t/admin/whitelist", { method: "POST", mode: "no-cors", body: '{"address":"10.99.0.0/16"}' });
setTimeout(() => document.forms[0].submit(), 300);
</script></body></html>
_EOH_
    close $fh;
    chromium("http://localhost:$ENV{TEST_NGINX_OTHER_PORT}/evil.html", '--dump-dom');
    wait_until(sub { (() = access_log_text('page.log') =~ /^POST /mg) >= 4 }, 'the four writes to be logged');
    my $q = request('GET /api/admin/queue', headers => { Authorization => "Bearer $admin" });
    my $w = request('GET /api/admin/whitelist', headers => { Authorization => "Bearer $admin" });
    my @writes = sort grep { /^POST / } split /\n/, access_log_text('page.log');
    join "\n", "gate: " . json_decode($q->{body})->{gate},
        "whitelist: " . json_encode(json_decode($w->{body})->{whitelist}),
        @writes;
--- client_output
gate: open
whitelist: []
POST /api/admin/gate/drain 403 key=- site=cross-site
POST /t/admin/gate/drain 403 key=- site=cross-site
POST /t/admin/gate/pause 403 key=- site=cross-site
POST /t/admin/whitelist 403 key=- site=cross-site



=== TEST 5: the page shows today's usage per key and source, and the tokens per second of each model
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
--- config
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html {
        root html;
    }
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 60
--- client
    my $body = '{"model":"llama3:70b","stream":false,"messages":[{"role":"user","content":"a b c"}]}';
    for my $i (1 .. 2) {
        my $r = request('POST /api/chat', body => $body,
                        headers => { Authorization => "Bearer $alice",
                                     'X-Standin-Tokens' => 4, 'X-Standin-Delay-Ms' => 5 });
        die "chat: $r->{status}" unless $r->{status} == 200;
    }
    my $r = request('POST /api/chat', body => $body,
                    headers => { 'X-Standin-Tokens' => 6, 'X-Standin-Delay-Ms' => 5 });
    die "chat: $r->{status}" unless $r->{status} == 200;
    my $p = page();
    my $tps = $p->{tps}{'llama3:70b'} // 'none';
    # earlier blocks served the keyless sources too: the page shows the API's figures
    my $u = json_decode(request('GET /api/admin/usage',
                                headers => { Authorization => "Bearer $admin" })->{body});
    my $api = join '/', map { $u->{principals}{'source:api'}{$_} }
                        qw(requests prompt_tokens completion_tokens);
    join "\n", "ready=$p->{ready}",
        "key:alice: $p->{usage}{'key:alice'}",
        "source:api as the API: " . ($p->{usage}{'source:api'} eq $api ? 'yes' : "$p->{usage}{'source:api'} vs $api"),
        "tokens/s: " . ($tps =~ /^\d+\.\d$/ && $tps > 0 ? 'shown' : $tps);
--- client_output
ready=1
key:alice: 2/6/8
source:api as the API: yes
tokens/s: shown



=== TEST 6: the page shows the resident models and, per model, its dispatches, predicted swaps and swaps seen, as GET models has them
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=3;
--- config
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html {
        root html;
    }
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 60
--- client
    for my $m ('llama3:70b', 'llama3:70b') {
        my $r = request('POST /api/chat',
                        body => qq({"model":"$m","stream":false,"messages":[]}),
                        headers => { 'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0 });
        die "chat: $r->{status}" unless $r->{status} == 200;
    }
    my $p = page();
    my $m = json_decode(request('GET /api/admin/models',
                                headers => { Authorization => "Bearer $admin" })->{body});
    my ($api) = map { "yes/$_->{dispatched}/$_->{predicted_swaps}/$_->{loads}" } @{ $m->{models} };
    join "\n", "ready=$p->{ready}", "resident: $p->{resident}",
        "llama3:70b: $p->{swaps}{'llama3:70b'}",
        "as the API: " . ($p->{swaps}{'llama3:70b'} eq $api ? 'yes' : "no: $api");
--- client_output
ready=1
resident: llama3:70b (loaded=1)
llama3:70b: yes/2/1/0
as the API: yes




=== TEST 7: the page draws the queue's history (length and oldest wait) from GET history, and the queue shows tenant and residency
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
--- config
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html {
        root html;
    }
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 60
--- client
    my $history = sub {
        json_decode(request('GET /api/admin/history',
                            headers => { Authorization => "Bearer $admin" })->{body});
    };
    # the hold's model is the one resident; the two waiting ask for another
    my $hold = hold_gate();
    my @h = map { start_chat("api$_", '{"model":"mistral:7b","messages":[]}',
                             'X-Standin-Tokens' => 1) } 1 .. 2;
    wait_until(sub { queued_count() == 3 }, 'two to wait');
    wait_until(sub { @{ $history->()->{samples} } >= 3 }, 'three samples');
    my $p = page();
    chromium(page_url($admin), '--window-size=1280,1100',
             '--screenshot=' . servroot() . '/admin-chart.png');
    Test::More::diag("admin page with its chart: " . servroot() . "/admin-chart.png");
    my $api = $history->();
    standin_release();
    wait_all($hold, @h);

    my $c = $p->{chart};
    my %api = map { $_->{time} => $_ } @{ $api->{samples} };
    my @times = @{ $c->{times} };
    my $newest = pop @times;   # its second may have moved on since
    my ($same, $n) = (0, scalar @times);
    for my $i (0 .. $#times) {
        my $s = $api{ $times[$i] } or next;
        $same++ if $s->{waiting} == $c->{waiting}{values}[$i]
                   && $s->{oldest_wait} == $c->{oldest}{values}[$i];
    }
    # a point's height is its value on its axis: y = top + height * (1 - v / max)
    my $placed = 1;
    for my $series ([waiting => $c->{max_waiting}], [oldest => $c->{max_wait}]) {
        my ($name, $max) = @$series;
        my $l = $c->{$name};
        for my $i (0 .. $#{ $l->{values} }) {
            my $y = 14 + 172 * (1 - $l->{values}[$i] / $max);
            $placed = 0 if abs($l->{points}[$i][1] - $y) > 0.11;
        }
        $placed = 0 if @{ $l->{points} } != $c->{samples};
    }
    my @x = map { $_->[0] } @{ $c->{waiting}{points} };
    my $rightward = !grep { $x[$_] <= $x[$_ - 1] } 1 .. $#x;
    join "\n", "ready=$p->{ready}",
        "chart samples: " . ($c->{samples} >= 3 ? 'some' : "only $c->{samples}")
            . ", times in GET history: " . ((grep { !$api{$_} } @times) ? 'no' : 'yes'),
        "values as GET history's: " . ($same == $n ? 'all' : "$same of $n"),
        "newest: waiting=$c->{waiting}{values}[-1]",
        "points placed by value on their axis: " . ($placed ? 'yes' : 'no'),
        "oldest at the left, newest at the right: " . ($rightward && abs($x[-1] - 740) < 0.11 ? 'yes' : "no (@x)"),
        "axis labels: " . join(' | ', grep { /now|min|waiting|oldest/ } @{ $c->{text} }),
        "queue: " . join(' ', map { "#$_ tenant=$p->{queue_tenant}{$_} resident=$p->{queue_resident}{$_}" }
                                  sort { $a <=> $b } keys %{ $p->{queue_tenant} }),
        "tenants: $p->{empty_tenants}",
        "screenshot: " . (-s servroot() . '/admin-chart.png' > 10000 ? 'kept' : 'missing');
--- client_output
ready=1
chart samples: some, times in GET history: yes
values as GET history's: all
newest: waiting=2
points placed by value on their axis: yes
oldest at the left, newest at the right: yes
axis labels: now | -1 min | -2 min | -3 min | -4 min | -5 min | ■ waiting (requests, left) | ■ oldest wait (seconds, right)
queue: #2 tenant=- resident=no #3 tenant=- resident=no
tenants: fair shares are off on this zone (seadragon_zone ... fair=tokens)
screenshot: kept



=== TEST 8: the page's tenants table: each tenant of fair shares, its tokens and its share as a bar
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1 fair=tokens;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
--- config
    location = /api/admin/page {
        alias $TEST_NGINX_REPO/conf/html/admin.html;
        default_type text/html;
    }
    location = /driver.html {
        root html;
    }
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 60
--- client
    my $bob = tool('key create bob --source coding');
    my $hold = hold_gate();
    my @h;
    for my $c (['coding1', $alice], ['coding2', $alice], ['coding3', $bob]) {
        push @h, chat($c->[0], key => $c->[1]);
        my $n = 1 + @h;
        wait_until(sub { queued_count() == $n }, "$c->[0] to wait");
    }
    my $parked = page();
    standin_release();
    wait_all($hold, @h);
    # the last answer's tokens are counted as its slot is given back
    my $tokens = sub {
        my $r = request('GET /api/admin/tenants',
                        headers => { Authorization => "Bearer $::admin" });
        my $sum = 0;
        $sum += $_->{tokens} for @{ json_decode($r->{body})->{tenants} };
        return $sum;
    };
    wait_until(sub { $tokens->() == 8 }, 'every answer to be counted');
    my $done = page();
    join "\n", "parked: " . join(' ', map { "$_=$parked->{tenants}{$_}" } sort keys %{ $parked->{tenants} }),
        "queue tenants: " . join(',', map { $parked->{queue_tenant}{$_} } sort { $a <=> $b } keys %{ $parked->{queue_tenant} }),
        "their model resident (the hold's): " . join(',', map { $parked->{queue_resident}{$_} } sort { $a <=> $b } keys %{ $parked->{queue_resident} }),
        map({ "done $_: $done->{tenants}{$_}" } sort keys %{ $done->{tenants} });
--- client_output
parked: api addr:127.0.0.1=1/0/0/1 share=0.0 bar=0.0 coding key:alice=1/0/2/0 share=0.0 bar=0.0 coding key:bob=1/0/1/0 share=0.0 bar=0.0
queue tenants: key:alice,key:alice,key:bob
their model resident (the hold's): yes,yes,yes
done api addr:127.0.0.1: 1/2/0/0 share=100.0 bar=100.0
done coding key:alice: 1/4/0/0 share=66.7 bar=66.7
done coding key:bob: 1/2/0/0 share=33.3 bar=33.3



=== TEST 9: a person logs in with a user of the admin source; the token is the Bearer of the page's calls, never in a URL
--- http_config eval: $::other_http_config
--- config eval: $::other_config . "    location /auth/ { seadragon_auth ollama; }\n"
--- timeout: 90
--- client
    for (['webadmin', 'admin', 'web pass'], ['chatter', 'chat', 'chat pass']) {
        my ($name, $source, $password) = @$_;
        my $file = servroot() . '/password';
        open my $fh, '>', $file or die $!;
        print $fh "$password\n";
        close $fh;
        tool("user add $name --source $source < '$file'");
        unlink $file;
    }
    my $p = page(undef, undef, ['webadmin', 'web pass']);
    chromium(page_url(undef, undef, ['webadmin', 'web pass']), '--window-size=1280,900',
             '--screenshot=' . servroot() . '/admin-login.png');
    Test::More::diag("admin login screenshot: " . servroot() . "/admin-login.png");
    my $bad = page(undef, undef, ['webadmin', 'wrong pass']);
    my $chat = page(undef, undef, ['chatter', 'chat pass']);
    my $out = page(undef, undef, ['webadmin', 'web pass'], 1);
    my $log = access_log_text('page.log');
    my @logins = map { (split / /)[2] } grep { m{^POST /auth/token } } split /\n/, $log;
    my @api = grep { m{^GET /api/admin/(?!page)} } split /\n/, $log;
    join "\n", "ready=$p->{ready} gate=$p->{gate} state=$p->{login_state} counters="
            . join(',', sort keys %{ $p->{counters} }) . " error=" . ($p->{error} // ''),
        "wrong password: ready=$bad->{ready} state=$bad->{login_state} error="
            . ($bad->{error} =~ /(login refused: .*)/ ? $1 : $bad->{error}),
        "chat user: ready=$chat->{ready} error=$chat->{error}",
        "logged in: kept in sessionStorage: $p->{stored}; logged out: ready=$out->{ready} state="
            . "$out->{login_state} kept: $out->{stored} error=$out->{error}",
        "logins: @logins",
        "API calls answered 200: " . ((grep { / 200 / } @api) ? 'some' : 'none')
            . ", 403: " . ((grep { / 403 / } @api) ? 'some' : 'none'),
        "a token or a password in a URL: "
            . (($log =~ /eyJ|pass|username/) ? 'yes' : 'no'),
        "screenshot: " . (-s servroot() . '/admin-login.png' > 10000 ? 'kept' : 'missing');
--- client_output
ready=1 gate=open state=logged in as webadmin counters=admin,api error=
wrong password: ready=error state= error=login refused: 401: Incorrect username or password
chat user: ready=error error=403: not an admin user
logged in: kept in sessionStorage: 2; logged out: ready=error state= kept: 0 error=401: admin key required (enter an admin key above)
logins: 200 200 401 200 200
API calls answered 200: some, 403: some
a token or a password in a URL: no
screenshot: kept
