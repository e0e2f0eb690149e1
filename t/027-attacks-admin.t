# The admin API attacked (issue 11): a refused admin request changes
# nothing and is logged with its real status, for every write endpoint and
# every kind of refusal, over HTTP/1.1 and HTTP/2; a browser's cross-site
# write is refused even where the location's own access checks would let
# it in; answers stay JSON whatever bytes come in; metrics with a long zone
# name stay within their buffer; seadragon_json_errors in a metrics, health
# or admin location works in either order.
#
# Every refusal is checked against the state, not only its status: the
# gate, the keys, the whitelist and the counters (read with a valid admin
# key before and after), the access log's status for that very request
# (an X-Case header names it), and no "header already sent".
use lib 't/lib';
use Test::Seadragon;
use File::Temp ();

our $tool = "$ENV{PWD}/build/seadragon-store";
our $dir = File::Temp->newdir();
our $store = "$dir/store";
$ENV{TEST_NGINX_STORE} = $store;

if (!-x $tool) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

sub tool_at {
    my ($at, @args) = @_;
    my $out = `'$tool' --store '$at' @args 2>/dev/null`;
    die "seadragon-store @args failed" if $?;
    chomp $out;
    return $out;
}

sub tool { tool_at($store, @_) }

tool('init');
chmod 0755, "$dir";         # for workers that run as nobody (TEST 4)
our $admin = tool('key create ops --source admin');
our $user = tool('key create alice --source coding');
our $revoked = tool('key create gone --source admin');
tool('key revoke gone');
our $disabled = tool('key create off --source admin');
tool('key disable off');
our $expired = tool('key create old --source admin --expires 1s');
tool('whitelist add 127.0.0.1');

# a zone name of 300 characters (TEST 9)
$ENV{TEST_NGINX_LONG_ZONE} = 'z' . ('-long' x 59) . 'zone';

# what the writes below would change: two keys to revoke or disable, one
# to enable, a whitelist entry to remove (and, absent: the key "intruder"
# and the entry 10.88.0.0/16, which two writes would add)
our $expired_seen;

sub baseline {
    # the key "old" turns from active to expired once, before any snapshot
    $expired_seen ||= wait_until(sub { tool('key list') =~ /^old\tadmin\texpired\t/m },
                                 'the key "old" to expire', 5);
    my $s = snapshot();
    api('POST', 'gate/resume') if $s->{gate} ne 'open';
    my %k = map { my ($name, $source, $state) = split /:/; ($name => $state) }
            split / /, $s->{keys};
    for my $want ([ 'victim', 'coding', 'active' ], [ 'victim-admin', 'admin', 'active' ],
                  [ 'sleeper', 'coding', 'disabled' ])
    {
        my ($name, $source, $state) = @$want;
        tool("key create $name --source $source") unless $k{$name};
        tool(($state eq 'active' ? 'key enable ' : 'key disable ') . $name)
            if ($k{$name} // 'active') ne $state;
    }
    tool('key revoke intruder') if $k{intruder};
    my %w = map { $_ => 1 } split / /, $s->{whitelist};
    tool('whitelist add 10.77.0.0/16 --note target') unless $w{'10.77.0.0/16'};
    tool('whitelist remove 10.88.0.0/16') if $w{'10.88.0.0/16'};
}

# Every write of the admin API (ngx_http_seadragon_admin.c): the gate's
# three controls, creating, revoking, disabling and enabling keys (admin
# keys included), adding to and removing from the whitelist.  "gate" is
# the state a write needs before it, to have something to change.
our @writes = (
    { what => 'POST gate/pause' },
    { what => 'POST gate/drain' },
    { what => 'POST gate/resume', gate => 'paused' },
    { what => 'POST keys', body => '{"name":"intruder","source":"admin"}' },
    { what => 'DELETE keys/victim' },
    { what => 'DELETE keys/victim-admin' },
    { what => 'POST keys/victim/disable' },
    { what => 'POST keys/victim-admin/disable' },
    { what => 'POST keys/sleeper/enable' },
    { what => 'POST whitelist', body => '{"address":"10.88.0.0/16","note":"intruder"}' },
    { what => 'DELETE whitelist/10.77.0.0/16' },
);

# Every kind of refusal that needs no broken store: [ name, status, headers ]
our @refusals = (
    [ 'no key', 401, {} ],
    [ 'a bogus key', 401, { Authorization => 'Bearer sd-' . ('A' x 43) } ],
    [ 'not a key at all', 401, { Authorization => 'Bearer hello' } ],
    [ 'a revoked admin key', 401, { Authorization => "Bearer $revoked" } ],
    [ 'a disabled admin key', 401, { Authorization => "Bearer $disabled" } ],
    [ 'an expired admin key', 401, { Authorization => "Bearer $expired" } ],
    [ "another source's key", 403, { Authorization => "Bearer $user" } ],
    [ "another source's key in X-API-Key", 403, { 'X-API-Key' => $user } ],
);

# A browser's write from another site: what fetch(url, {method: "POST",
# mode: "no-cors", body}) sends from https://evil.example.
our %cross_site = (Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site',
                   'Sec-Fetch-Mode' => 'no-cors', 'Sec-Fetch-Dest' => 'empty',
                   'Content-Type' => 'text/plain;charset=UTF-8');

our $http_config = <<'_EOC_';
    log_format cases '$http_x_case $status $server_protocol';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;

    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        server_name localhost;
        access_log logs/cases.log cases;
        location /api/admin/ { seadragon_admin ollama; }
        location /t/admin/ {
            allow 127.0.0.1;
            deny all;
            seadragon_admin ollama auth=nginx;
        }
    }
_EOC_

our $config = <<'_EOC_';
    access_log logs/cases.log cases;
    location /api/admin/ { seadragon_admin ollama; }
    location /t/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# with the valid admin key, over HTTP/1.1
sub api {
    my ($method, $path, $body) = @_;
    return request("$method /api/admin/$path",
        headers => { Authorization => "Bearer $admin" },
        defined $body ? (body => $body) : ());
}

sub api_json {
    my ($path) = @_;
    my $r = api('GET', $path);
    die "GET $path: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return json_decode($r->{body});
}

# what a refused write must leave as it was
sub snapshot {
    my %s;
    $s{gate} = api_json('queue')->{gate};
    $s{keys} = join " ", map { "$_->{name}:$_->{source}:$_->{state}" }
                         sort { $a->{name} cmp $b->{name} } @{ api_json('keys')->{keys} };
    $s{whitelist} = join " ", sort map { $_->{address} } @{ api_json('whitelist')->{whitelist} };
    $s{counters} = json_encode(api_json('stats')->{sources});
    return \%s;
}

sub changed {
    my ($before, $after) = @_;
    return grep { $before->{$_} ne $after->{$_} } sort keys %$before;
}

# HTTP/2 without TLS (prior knowledge), from Node: one connection per
# request, from one process per nginx.  (curl 7.88 loses the answer when
# nginx refuses a request before its body has arrived and resets the
# stream with NO_ERROR after the answer, as RFC 9113 8.1 allows.)
our $h2_script = <<'_EOJ_';
'use strict';
const http2 = require('http2');
const readline = require('readline');
const rl = readline.createInterface({ input: process.stdin });
rl.on('close', () => process.exit(0));
rl.on('line', (line) => {
    const req = JSON.parse(line);
    const session = http2.connect(req.authority);
    const out = (o) => { process.stdout.write(JSON.stringify(o) + '\n'); session.close(); };
    session.on('error', (err) => out({ status: 0, error: String(err), headers: {}, body: '' }));
    const stream = session.request({ ':method': req.method, ':path': req.path, ...req.headers },
                                   { endStream: req.body === null });
    let status = 0, headers = {};
    const chunks = [];
    stream.on('response', (h) => { status = h[':status']; headers = h; });
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => out({ status, headers, body: Buffer.concat(chunks).toString('latin1') }));
    stream.on('error', (err) => out({ status, error: String(err), headers, body: Buffer.concat(chunks).toString('latin1') }));
    if (req.body !== null) stream.end(Buffer.from(req.body, 'latin1'));
});
_EOJ_

our ($h2_pid, $h2_in, $h2_out, $h2_for);

sub h2 {
    my ($method, $path, %a) = @_;
    if (!$h2_pid || $h2_for != nginx_master_pid()) {
        if ($h2_pid) {
            close $h2_in;
            waitpid $h2_pid, 0;
        }
        my $js = servroot() . '/h2-client.js';
        open my $fh, '>', $js or die "$js: $!";
        print $fh $h2_script;
        close $fh;
        require IPC::Open2;
        $h2_pid = IPC::Open2::open2($h2_out, $h2_in, 'node', $js);
        $h2_in->autoflush(1);
        $h2_for = nginx_master_pid();
    }
    my %headers = map { (lc $_ => $a{headers}{$_}) } keys %{ $a{headers} || {} };
    $headers{':authority'} = delete $headers{host} if exists $headers{host};
    print $h2_in JSON::PP->new->canonical->ascii->encode({
        authority => "http://127.0.0.1:$ENV{TEST_NGINX_H2_PORT}",
        method => $method, path => $path, headers => \%headers, body => $a{body} }), "\n";
    my $line = <$h2_out> // die "the HTTP/2 client ended";
    return JSON::PP->new->utf8->decode($line);
}

# one write over one protocol; $case goes to the access log
sub write_as {
    my ($proto, $w, $headers, $case, $prefix) = @_;
    my ($method, $path) = split / /, $w->{what};
    my %h = (%$headers, 'X-Case' => $case);
    $prefix //= '/api/admin/';
    return h2($method, "$prefix$path", headers => \%h, body => $w->{body})
        if $proto eq 'HTTP/2';
    return request("$method $prefix$path", headers => \%h,
                   defined $w->{body} ? (body => $w->{body}) : ());
}

# the status (and protocol) the access log gives the request named $case
sub logged {
    my ($case) = @_;
    my ($status, $protocol);
    wait_until(sub { ($status, $protocol) = access_log_text('cases.log') =~ /^\Q$case\E (\d+) (\S+)$/m;
                     defined $status }, "the access log line of $case",
               $ENV{TEST_NGINX_USE_VALGRIND} ? 60 : 10);
    return wantarray ? ($status, $protocol) : $status;
}

our $case = 0;

# every write with every refusal: one line per kind of refusal, or what
# went wrong with which write
sub refuse_all {
    my ($proto, $refusals, %a) = @_;
    my $snapshot = $a{snapshot} // \&snapshot;
    my $pause = $a{pause} // sub { api('POST', 'gate/pause') };
    my $restore = $a{baseline} // \&baseline;
    my @which = @{ $a{writes} // \@writes };
    my @out;
    for my $kind (@$refusals) {
        my ($name, $status, $headers) = @$kind;
        my @bad;
        for my $w (@which) {
            my $id = ($proto eq 'HTTP/2' ? 'h2-' : 'h1-') . ++$case;
            $pause->() if $w->{gate};
            my $before = $snapshot->();
            my $r = write_as($proto, $w, $headers, $id, $a{prefix});
            my $after = $snapshot->();
            my ($logged, $protocol) = logged($id);
            my $error = eval { json_decode($r->{body})->{error} };
            my @changed = changed($before, $after);
            my @why;
            push @why, "answered $r->{status}" if $r->{status} != $status;
            push @why, "not a JSON error: $r->{body}" unless defined $error && !ref $error;
            push @why, "no WWW-Authenticate"
                if $status == 401 && ($r->{headers}{'www-authenticate'} // '') ne 'Bearer';
            push @why, "logged $logged" if $logged != $status;
            push @why, "changed the " . join(", the ", @changed) if @changed;
            push @why, "over $protocol" if $protocol ne ($proto eq 'HTTP/2' ? 'HTTP/2.0' : $proto);
            push @bad, "  $w->{what}: " . join("; ", @why) if @why;
            $restore->() if @changed || $w->{gate};
        }
        push @out, @bad ? ("$proto, $name:", @bad)
                        : "$proto, $name: " . @which . " writes refused $status, nothing changed, logged $status";
    }
    return @out;
}

sub header_already_sent {
    my @n = error_log_text() =~ /header already sent/g;
    return scalar @n;
}

# an answer is JSON and parses
sub json_ok {
    my ($r) = @_;
    my $v = eval { JSON::PP->new->utf8->decode($r->{body}) };
    return $v ? "$r->{status} " . JSON::PP->new->canonical->ascii->encode($v)
              : "$r->{status} MALFORMED $r->{body}";
}


run_tests();

__DATA__

=== TEST 1: every write, refused in every way over HTTP/1.1, changes nothing and is logged with its status
--- master_on
--- timeout: 30
--- client
    baseline();
    my @pids = nginx_worker_pids();
    my @out = refuse_all('HTTP/1.1', \@refusals);
    join "\n", @out,
        "header already sent: " . header_already_sent(),
        "workers: " . ("@pids" eq join(' ', nginx_worker_pids()) ? 'the same' : 'changed');
--- client_output
HTTP/1.1, no key: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, a bogus key: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, not a key at all: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, a revoked admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, a disabled admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, an expired admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/1.1, another source's key: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, another source's key in X-API-Key: 11 writes refused 403, nothing changed, logged 403
header already sent: 0
workers: the same
--- no_error_log
header already sent
[crit]
[emerg]



=== TEST 2: every write, refused in every way over HTTP/2, changes nothing and is logged with its status
--- master_on
--- timeout: 30
--- client
    baseline();
    my @pids = nginx_worker_pids();
    my @out = refuse_all('HTTP/2', \@refusals);
    join "\n", @out,
        "header already sent: " . header_already_sent(),
        "workers: " . ("@pids" eq join(' ', nginx_worker_pids()) ? 'the same' : 'changed');
--- client_output
HTTP/2, no key: 11 writes refused 401, nothing changed, logged 401
HTTP/2, a bogus key: 11 writes refused 401, nothing changed, logged 401
HTTP/2, not a key at all: 11 writes refused 401, nothing changed, logged 401
HTTP/2, a revoked admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/2, a disabled admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/2, an expired admin key: 11 writes refused 401, nothing changed, logged 401
HTTP/2, another source's key: 11 writes refused 403, nothing changed, logged 403
HTTP/2, another source's key in X-API-Key: 11 writes refused 403, nothing changed, logged 403
header already sent: 0
workers: the same
--- no_error_log
header already sent
[crit]
[emerg]



=== TEST 3: with the store unreadable, every write is refused 503 over both protocols and changes nothing
The worker is restarted with the store moved away, so it cannot open it;
meanwhile the gate and the counters are read through the auth=nginx
location and the keys and the whitelist with the tool, from where the
store went.  Then the store comes back and the API itself shows that
nothing changed.
--- master_on
--- timeout: 30
--- client
    baseline();
    my $before = snapshot();
    my $away = "$store.away";
    my $restart = sub {
        my @old = nginx_worker_pids();
        kill 'TERM', @old;
        wait_until(sub { my @p = nginx_worker_pids();
                         @p == 1 && !grep { $_ == $p[0] } @old }, 'a new worker');
    };
    rename $store, $away or die "rename: $!";
    $restart->();
    wait_until(sub { api('GET', 'queue')->{status} == 503 }, 'the store to fail');
    my $broken = sub {
        my %s;
        $s{gate} = json_decode(request('GET /t/admin/queue')->{body})->{gate};
        $s{counters} = json_encode(json_decode(request('GET /t/admin/stats')->{body})->{sources});
        $s{keys} = tool_at($away, 'key list');
        $s{whitelist} = tool_at($away, 'whitelist list');
        return \%s;
    };
    my @kinds = ([ 'the store unreadable, an admin key', 503, { Authorization => "Bearer $admin" } ],
                 [ "the store unreadable, another source's key", 503, { Authorization => "Bearer $user" } ]);
    # only the gate can be set meanwhile, through the auth=nginx location
    my %how = (snapshot => $broken,
               pause => sub { request('POST /t/admin/gate/pause') },
               baseline => sub { request('POST /t/admin/gate/resume') });
    my @out = (refuse_all('HTTP/1.1', \@kinds, %how), refuse_all('HTTP/2', \@kinds, %how));
    rename $away, $store or die "rename back: $!";
    $restart->();
    wait_until(sub { api('GET', 'queue')->{status} == 200 }, 'the store to be back');
    my @changed = changed($before, snapshot());
    join "\n", @out,
        "afterwards, through the API: " . (@changed ? "changed @changed" : 'nothing changed'),
        "header already sent: " . header_already_sent();
--- client_output
HTTP/1.1, the store unreadable, an admin key: 11 writes refused 503, nothing changed, logged 503
HTTP/1.1, the store unreadable, another source's key: 11 writes refused 503, nothing changed, logged 503
HTTP/2, the store unreadable, an admin key: 11 writes refused 503, nothing changed, logged 503
HTTP/2, the store unreadable, another source's key: 11 writes refused 503, nothing changed, logged 503
afterwards, through the API: nothing changed
header already sent: 0
--- no_error_log
header already sent
exited on signal



=== TEST 4: with a store the workers may only read, every write of the store is refused 503 and changes nothing
The workers run as nobody and data.mdb is made read-only for them; a
restarted worker then opens the store read-only: keys still work, and the
admin API's changes of the store answer 503.
--- main_config
    user nobody nogroup;
--- master_on
--- timeout: 30
--- client
    baseline();
    my $restart = sub {
        my @old = nginx_worker_pids();
        kill 'TERM', @old;
        wait_until(sub { my @p = nginx_worker_pids();
                         @p == 1 && !grep { $_ == $p[0] } @old }, 'a new worker');
    };
    my $probe = sub { api('POST', 'keys/nobody/disable')->{status} };
    chmod 0444, "$store/data.mdb" or die "chmod: $!";
    $restart->();
    wait_until(sub { $probe->() == 503 }, 'the store to be read-only');
    my @store_writes = grep { $_->{what} =~ / (keys|whitelist)/ } @writes;
    my @kinds = ([ 'the store read-only for workers, an admin key', 503, { Authorization => "Bearer $admin" } ]);
    my @out = (refuse_all('HTTP/1.1', \@kinds, writes => \@store_writes),
               refuse_all('HTTP/2', \@kinds, writes => \@store_writes));
    chmod 0644, "$store/data.mdb" or die "chmod: $!";
    $restart->();
    wait_until(sub { $probe->() == 404 }, 'the store to be writable');
    join "\n", @out, "writable again: " . $probe->(),
        "header already sent: " . header_already_sent();
--- client_output
HTTP/1.1, the store read-only for workers, an admin key: 8 writes refused 503, nothing changed, logged 503
HTTP/2, the store read-only for workers, an admin key: 8 writes refused 503, nothing changed, logged 503
writable again: 404
header already sent: 0
--- no_error_log
header already sent
exited on signal



=== TEST 5: a browser's cross-site write (CSRF) is refused and changes nothing, with or without a credential
The no-cors POST carries no key, so auth=key refuses it; it would carry
what a browser adds by itself (the address it comes from, basic auth,
cookies), so the auth=nginx location, which lets 127.0.0.1 in, refuses
it because the browser says where it comes from.  A key does not make a
cross-site write acceptable either.
--- master_on
--- timeout: 30
--- client
    baseline();
    my %same_site = (%cross_site, 'Sec-Fetch-Site' => 'same-site', Origin => 'http://127.0.0.1:1');
    my %foreign_origin = (Origin => 'https://evil.example');   # a browser without Sec-Fetch-*
    my %null_origin = (Origin => 'null');
    my @auth_key = ([ 'auth=key, cross-site no-cors, no key', 403, { %cross_site } ],
                    [ 'auth=key, cross-site, an admin key', 403,
                      { %cross_site, Authorization => "Bearer $admin" } ]);
    my @auth_nginx = ([ 'auth=nginx, cross-site no-cors', 403, { %cross_site } ],
                      [ 'auth=nginx, same-site', 403, { %same_site } ],
                      [ 'auth=nginx, a foreign Origin', 403, { %foreign_origin } ],
                      [ 'auth=nginx, Origin null', 403, { %null_origin } ]);
    my @out;
    for my $proto ('HTTP/1.1', 'HTTP/2') {
        push @out, refuse_all($proto, \@auth_key),
                   refuse_all($proto, \@auth_nginx, prefix => '/t/admin/');
    }
    join "\n", @out, "header already sent: " . header_already_sent();
--- client_output
HTTP/1.1, auth=key, cross-site no-cors, no key: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, auth=key, cross-site, an admin key: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, auth=nginx, cross-site no-cors: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, auth=nginx, same-site: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, auth=nginx, a foreign Origin: 11 writes refused 403, nothing changed, logged 403
HTTP/1.1, auth=nginx, Origin null: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=key, cross-site no-cors, no key: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=key, cross-site, an admin key: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=nginx, cross-site no-cors: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=nginx, same-site: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=nginx, a foreign Origin: 11 writes refused 403, nothing changed, logged 403
HTTP/2, auth=nginx, Origin null: 11 writes refused 403, nothing changed, logged 403
header already sent: 0
--- no_error_log
header already sent



=== TEST 6: the same writes, allowed, do what they say: with an admin key, and same-origin or from a script with auth=nginx
This is what the blocks above would have seen change: each write is
made once by each allowed caller, and what changed is listed.  Reads
from another site are still answered (a no-cors page cannot read them).
--- client
    my @callers = ([ 'HTTP/1.1', 'an admin key', '/api/admin/', { Authorization => "Bearer $admin" } ],
                   [ 'HTTP/2', 'an admin key', '/api/admin/', { Authorization => "Bearer $admin" } ],
                   [ 'HTTP/1.1', 'auth=nginx, same-origin', '/t/admin/',
                     { 'Sec-Fetch-Site' => 'same-origin', 'Sec-Fetch-Mode' => 'cors',
                       Host => "localhost:$ENV{TEST_NGINX_SERVER_PORT}",
                       Origin => "http://localhost:$ENV{TEST_NGINX_SERVER_PORT}" } ],
                   [ 'HTTP/1.1', 'auth=nginx, an older browser, same origin', '/t/admin/',
                     { Host => "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}",
                       Origin => "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" } ],
                   [ 'HTTP/2', 'auth=nginx, a script', '/t/admin/', {} ]);
    my @out;
    for my $c (@callers) {
        my ($proto, $name, $prefix, $headers) = @$c;
        my @did;
        for my $w (@writes) {
            baseline();
            api('POST', 'gate/pause') if $w->{gate};
            my $before = snapshot();
            my $id = 'ok-' . ++$case;
            my $r = write_as($proto, $w, $headers, $id, $prefix);
            my $after = snapshot();
            my $logged = logged($id);
            push @did, "$r->{status}/$logged:" . join(",", changed($before, $after));
        }
        push @out, "$proto, $name: @did";
    }
    baseline();
    my $read = request('GET /t/admin/queue', headers => { %cross_site });
    join "\n", @out, "a cross-site read: $read->{status} " . json_decode($read->{body})->{gate};
--- client_output
HTTP/1.1, an admin key: 200/200:gate 200/200:gate 200/200:gate 201/201:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 201/201:whitelist 200/200:whitelist
HTTP/2, an admin key: 200/200:gate 200/200:gate 200/200:gate 201/201:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 201/201:whitelist 200/200:whitelist
HTTP/1.1, auth=nginx, same-origin: 200/200:gate 200/200:gate 200/200:gate 201/201:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 201/201:whitelist 200/200:whitelist
HTTP/1.1, auth=nginx, an older browser, same origin: 200/200:gate 200/200:gate 200/200:gate 201/201:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 201/201:whitelist 200/200:whitelist
HTTP/2, auth=nginx, a script: 200/200:gate 200/200:gate 200/200:gate 201/201:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 200/200:keys 201/201:whitelist 200/200:whitelist
a cross-site read: 200 open
--- no_error_log
header already sent



=== TEST 7: writes refused for what they ask, with a valid admin key, change nothing and are logged with their status
--- client
    baseline();
    my $big = '{"address":"10.88.0.0/16","note":"' . ('x' x 70000) . '"}';
    my @out;
    for my $c ([ 'PUT gate/pause', 405 ], [ 'GET gate/drain', 405 ], [ 'POST gate/open', 404 ],
                  [ 'POST gate', 404 ], [ 'DELETE keys', 405 ], [ 'PUT keys/victim', 405 ],
                  [ 'POST keys/victim', 405 ], [ 'POST keys/victim/delete', 404 ],
                  [ 'DELETE keys/nobody', 404 ], [ 'POST keys/nobody/disable', 404 ],
                  [ 'POST keys', 409, '{"name":"victim","source":"admin"}' ],
                  [ 'POST keys', 400, '{"name":"intruder","source":"no such"}' ],
                  [ 'POST keys', 400, '{"name":"intruder","source":"admin","expires_in":0}' ],
                  [ 'POST keys', 400, '{"name":"intruder"' ],
                  [ 'POST whitelist', 409, '{"address":"10.77.0.0/16"}' ],
                  [ 'POST whitelist', 400, '{"address":"10.88.0.1/16"}' ],
                  [ 'POST whitelist', 400, '{"address":"10.88.0.0/16","note":"a\\nb"}' ],
                  [ 'POST whitelist', 413, $big ],
                  [ 'DELETE whitelist/10.88.0.0/16', 404 ], [ 'PUT whitelist', 405 ],
                  [ 'POST queue', 405 ], [ 'DELETE stats', 405 ], [ 'POST nothing', 404 ])
    {
        my ($what, $status, $body) = @$c;
        my $id = 'bad-' . ++$case;
        my $before = snapshot();
        my $r = write_as('HTTP/1.1', { what => $what, body => $body },
                         { Authorization => "Bearer $admin" }, $id);
        my @changed = changed($before, snapshot());
        my $logged = logged($id);
        my $error = eval { json_decode($r->{body})->{error} };
        push @out, "$what: $r->{status}" . ($r->{status} == $status ? '' : " (expected $status)")
            . (defined $error ? '' : ' not a JSON error') . ", logged $logged"
            . (@changed ? ", changed the @changed" : '');
    }
    join "\n", @out, "header already sent: " . header_already_sent();
--- client_output
PUT gate/pause: 405, logged 405
GET gate/drain: 405, logged 405
POST gate/open: 404, logged 404
POST gate: 404, logged 404
DELETE keys: 405, logged 405
PUT keys/victim: 405, logged 405
POST keys/victim: 405, logged 405
POST keys/victim/delete: 404, logged 404
DELETE keys/nobody: 404, logged 404
POST keys/nobody/disable: 404, logged 404
POST keys: 409, logged 409
POST keys: 400, logged 400
POST keys: 400, logged 400
POST keys: 400, logged 400
POST whitelist: 409, logged 409
POST whitelist: 400, logged 400
POST whitelist: 400, logged 400
POST whitelist: 413, logged 413
DELETE whitelist/10.88.0.0/16: 404, logged 404
PUT whitelist: 405, logged 405
POST queue: 405, logged 405
DELETE stats: 405, logged 405
POST nothing: 404, logged 404
header already sent: 0
--- no_error_log
header already sent



=== TEST 8: invalid UTF-8 in an admin request gets a JSON error that parses, never malformed JSON
--- client
    baseline();
    my $before = snapshot();
    my $long = "\x{e9}" x 40;              # 80 bytes: cut at 64, inside no character
    utf8::encode($long);
    my $odd = "1" . ("\x{e9}" x 40);       # 81 bytes: a cut at 64 falls inside one
    utf8::encode($odd);
    my @out;
    for my $case (
        [ 'DELETE whitelist/%FF' ],
        [ 'DELETE whitelist/%C3%28' ],
        [ 'DELETE whitelist/%ED%A0%80' ],
        [ 'DELETE whitelist/%F4%90%80%80' ],
        [ 'DELETE whitelist/10.0.0.0%FF/8' ],
        [ 'DELETE keys/%FF' ],
        [ 'POST keys/%FF/disable' ],
        [ 'POST whitelist', qq({"address":"$long"}), ' (80 bytes)' ],
        [ 'POST whitelist', qq({"address":"$odd"}), ' (81 bytes)' ],
        [ 'POST whitelist', qq({"address":"\xff"}), ' (a raw 0xFF)' ],
        [ 'POST keys', qq({"name":"\xc3\xa9","source":"coding"}) ])
    {
        my ($what, $body, $label) = @$case;
        my $r = api(split(/ /, $what), $body);
        push @out, $what . ($label // '') . ": " . json_ok($r);
    }
    tool("whitelist add 10.66.0.0/16 --note '\xff\xfe'");
    my $list = api('GET', 'whitelist');
    my ($entry) = grep { $_->{address} eq '10.66.0.0/16' } @{ JSON::PP->new->utf8->decode($list->{body})->{whitelist} };
    tool('whitelist remove 10.66.0.0/16');
    push @out, "listed note: " . JSON::PP->new->ascii->encode([ $entry->{note} ]);
    my @changed = changed($before, snapshot());
    join "\n", @out, "changed: " . (@changed ? "@changed" : 'nothing');
--- client_output
DELETE whitelist/%FF: 400 {"error":"invalid address \"\ufffd\": not an IP address or CIDR range"}
DELETE whitelist/%C3%28: 400 {"error":"invalid address \"\ufffd(\": not an IP address or CIDR range"}
DELETE whitelist/%ED%A0%80: 400 {"error":"invalid address \"\ufffd\ufffd\ufffd\": not an IP address or CIDR range"}
DELETE whitelist/%F4%90%80%80: 400 {"error":"invalid address \"\ufffd\ufffd\ufffd\ufffd\": not an IP address or CIDR range"}
DELETE whitelist/10.0.0.0%FF/8: 400 {"error":"invalid address \"10.0.0.0\ufffd/8\": not an IP address or CIDR range"}
DELETE keys/%FF: 404 {"error":"there is no key with this name"}
POST keys/%FF/disable: 404 {"error":"there is no key with this name"}
POST whitelist (80 bytes): 400 {"error":"invalid address \"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\": not an IP address or CIDR range"}
POST whitelist (81 bytes): 400 {"error":"invalid address \"1\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\ufffd\": not an IP address or CIDR range"}
POST whitelist (a raw 0xFF): 400 {"error":"Invalid JSON: expected an object"}
POST keys: 400 {"error":"\"name\" must have 1 to 63 letters, digits, \"_\", \"-\", \".\" and \"@\""}
listed note: ["\ufffd\ufffd"]
changed: nothing
--- no_error_log
header already sent



=== TEST 9: metrics with a 300-character zone name and the longest source names stay in their buffer and parse
--- http_config eval
"    seadragon_zone $ENV{TEST_NGINX_LONG_ZONE}:1m capacity=1;\n"
. join("", map { "    seadragon_source s$_" . ('x' x 29) . " priority=$_ if=\$http_x_s$_;\n" } 1 .. 4)
. "    seadragon_source api priority=9;\n"
--- config
    location = /metrics { seadragon_metrics $TEST_NGINX_LONG_ZONE; }
    location /admin/ { seadragon_admin $TEST_NGINX_LONG_ZONE auth=nginx; }
--- client
    my $zone = $ENV{TEST_NGINX_LONG_ZONE};
    my $r = request('GET /metrics');
    my $text = $r->{body};
    my $file = servroot() . '/metrics.txt';
    open my $fh, '>', $file or die $!;
    print $fh $text;
    close $fh;
    my $promtool = `promtool check metrics < '$file' 2>&1`;
    my (%families, %zones, $samples, @bad);
    for my $line (split /\n/, $text) {
        if ($line =~ /^# (HELP|TYPE) (\w+) /) { $families{$2}++; next }
        if ($line =~ /^(\w+)\{zone="([^"\\]*)"(?:,\w+="[^"\\]*")*\} -?[\d.]+$/) {
            $samples++;
            $zones{$2}++;
            next;
        }
        push @bad, $line;
    }
    my $q = json_ok(request('GET /admin/queue'));
    join "\n", "$r->{status} " . (substr($text, -1) eq "\n" ? 'ends with a newline' : 'cut'),
        "promtool: " . ($? ? $promtool : 'ok'),
        "families: " . scalar(keys %families) . ", samples: $samples, malformed lines: " . scalar(@bad),
        "zone label: " . join(",", map { length($_) . " characters" . ($_ eq $zone ? ', the zone' : '') } keys %zones),
        "admin queue: " . ($q =~ /^200 \{.*"zone":"\Q$zone\E"/ ? 'JSON with the zone' : $q);
--- client_output
200 ends with a newline
promtool: ok
families: 27, samples: 177, malformed lines: 0
zone label: 300 characters, the zone
admin queue: JSON with the zone



=== TEST 10: seadragon_json_errors off after seadragon_metrics, seadragon_health or seadragon_admin is accepted and obeyed
--- http_config
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=3;
--- config
    location = /_tags {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/tags;
    }
    location = /metrics-off  { seadragon_metrics ollama; seadragon_json_errors off; }
    location = /metrics-on   { seadragon_metrics ollama; seadragon_json_errors on; }
    location = /health-off   { seadragon_health ollama /_tags; seadragon_json_errors off; }
    location = /admin-off/   { deny all; seadragon_admin ollama auth=nginx; seadragon_json_errors off; }
    location = /metrics      { seadragon_metrics ollama; }
    location = /health       { seadragon_health ollama /_tags; }
    location = /admin/       { deny all; seadragon_admin ollama auth=nginx; }
--- client
    my @out;
    for my $case ([ POST => '/metrics-off' ], [ POST => '/metrics-on' ], [ POST => '/health-off' ],
                  [ GET => '/admin-off/' ], [ POST => '/metrics' ], [ POST => '/health' ], [ GET => '/admin/' ])
    {
        my $r = request("$case->[0] $case->[1]");
        push @out, "$case->[1]: $r->{status} $r->{headers}{'content-type'}";
    }
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $t = `'$bin' -t -p '${\ servroot()}/' -c conf/nginx.conf 2>&1`;
    join "\n", @out, "nginx -t: " . ($? ? $t : 'ok');
--- client_output
/metrics-off: 405 text/html
/metrics-on: 405 application/json
/health-off: 405 text/html
/admin-off/: 403 text/html
/metrics: 405 application/json
/health: 405 application/json
/admin/: 403 application/json
nginx -t: ok



=== TEST 11: seadragon_json_errors off before seadragon_metrics, seadragon_health or seadragon_admin, or inherited, is obeyed
--- http_config
    seadragon_zone ollama:1m capacity=1;
    seadragon_source api priority=3;
--- config
    location = /_tags {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/tags;
    }
    location = /metrics-off  { seadragon_json_errors off; seadragon_metrics ollama; }
    location = /health-off   { seadragon_json_errors off; seadragon_health ollama /_tags; }
    location = /admin-off/   { deny all; seadragon_json_errors off; seadragon_admin ollama auth=nginx; }
    location /inherited/ {
        seadragon_json_errors off;
        location = /inherited/metrics { seadragon_metrics ollama; }
        location = /inherited/admin/  { deny all; seadragon_admin ollama auth=nginx; }
    }
--- client
    my @out;
    for my $case ([ POST => '/metrics-off' ], [ POST => '/health-off' ], [ GET => '/admin-off/' ],
                  [ POST => '/inherited/metrics' ], [ GET => '/inherited/admin/' ])
    {
        my $r = request("$case->[0] $case->[1]");
        push @out, "$case->[1]: $r->{status} $r->{headers}{'content-type'}";
    }
    join "\n", @out;
--- client_output
/metrics-off: 405 text/html
/health-off: 405 text/html
/admin-off/: 403 text/html
/inherited/metrics: 405 text/html
/inherited/admin/: 403 text/html
