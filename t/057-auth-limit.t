# Login attempts limited (issue 16): seadragon_auth's attempts=N/TIME,
# per client address (realip from X-Forwarded-For gives each request the
# address it names) and per user name.  Over the limit a login is answered
# 429 with Retry-After before any hash runs: the thread pool's completed
# tasks (nginx's debug log) do not grow, and the store's users, last_login
# included, are byte for byte what they were.  An unknown or invalid name
# is limited exactly as a known one; a success clears its name's count,
# not its address's; two workers share one count; a zone short of memory
# serves the login uncounted.  TEST 2 waits for a 3 s window to end while
# hashes run: under valgrind a hash takes longer than the window, and the
# block is skipped there.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins qw(user_add form_escape users_dump tasks_done);

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

for my $util (qw(mdb_dump)) {
    next if grep { -x "$_/$util" } split /:/, $ENV{PATH};
    require Test::More;
    Test::More::plan(skip_all => "$util is missing");
}

our $StoreDir = store_init();
sub tool { store_tool(@_) }

user_add('alice', 'chat', 'correct horse');
user_add('bob', 'coding', 'battery staple');

our $ops = tool('key create ops --source admin');

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    log_format auth '$remote_addr $request_uri $status';
    access_log logs/auth.log auth;
_EOC_

our $config = <<'_EOC_';
    location /auth/ {
        seadragon_auth ollama thread_pool=logins attempts=2/30s;
    }
    location = /metrics { seadragon_metrics ollama; }
    location /admin/ { seadragon_admin ollama; }
_EOC_

our $main_config = <<'_EOC_';
    thread_pool logins threads=1;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
    $block->set_value("main_config", $main_config)
        unless defined $block->main_config;
});

# a login from the address $from (X-Forwarded-For, taken by realip)
sub login {
    my ($from, $name, $password, %a) = @_;
    return request('POST /auth/token',
        body => 'grant_type=password&username=' . form_escape($name)
                . '&password=' . form_escape($password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => $from },
        %a);
}

# status, the body's words and the headers that tell a refusal apart
sub answer {
    my ($r) = @_;
    my $e = eval { json_decode($r->{body}) } // {};
    my $retry = $r->{headers}{'retry-after'};
    return join ' ', $r->{status}, ($e->{detail} // '-') . '/' . ($e->{error} // '-'),
        'www:' . ($r->{headers}{'www-authenticate'} // '-'),
        'retry:' . (!defined $retry ? '-' : $retry =~ /^\d+$/ && $retry >= 1
                                            && $retry <= 30 ? 'ok' : "bad($retry)");
}

# seadragon_logins_total by result, and the untracked count, from the metrics
sub logins_metrics {
    my $m = request('GET /metrics')->{body};
    my %c = $m =~ /^seadragon_logins_total\{zone="ollama",result="(\w+)"\} (\d+)$/mg;
    ($c{untracked}) = $m =~ /^seadragon_logins_untracked_total\{zone="ollama"\} (\d+)$/m;
    return join ' ', map { "$_=" . ($c{$_} // '?') } qw(ok refused limited inactive untracked);
}

sub logins_stats {
    my $r = request('GET /admin/stats', headers => { Authorization => "Bearer $ops" });
    my $l = json_decode($r->{body})->{logins};
    return join ' ', map { "$_=$l->{$_}" } qw(ok refused limited inactive untracked);
}


run_tests();

__DATA__

=== TEST 1: over the limit an address gets 429 with Retry-After, no hash runs, the store stays as it was
--- client
my $dump = users_dump();
my @r = (login('10.0.0.1', 'alice', 'wrong horse'),
         login('10.0.0.1', 'bob', 'wrong staple'));
my $hashed = tasks_done();
my $limited = login('10.0.0.1', 'alice', 'correct horse');
my $again = login('10.0.0.1', 'bob', 'battery staple');
die "a hash ran over the limit" unless tasks_done() == $hashed;
die "the store changed" unless users_dump() eq $dump;
die "content type" unless $limited->{headers}{'content-type'} =~ m{^application/json};
join "\n", (map { answer($_) } @r, $limited, $again), "hashes: $hashed",
    "metrics: " . logins_metrics(), "stats: " . logins_stats()
--- client_output
401 Incorrect username or password/Incorrect username or password www:Bearer retry:-
401 Incorrect username or password/Incorrect username or password www:Bearer retry:-
429 Too many login attempts/Too many login attempts www:- retry:ok
429 Too many login attempts/Too many login attempts www:- retry:ok
hashes: 2
metrics: ok=0 refused=2 limited=2 inactive=0 untracked=0
stats: ok=0 refused=2 limited=2 inactive=0 untracked=0
--- error_log
too many login attempts of the address, retry after
--- no_error_log
logged in
[alert]



=== TEST 2: another address is not limited by the first's count; when the window is over the address logs in
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- config
    location /auth/ {
        seadragon_auth ollama thread_pool=logins attempts=2/3s;
    }
    location = /metrics { seadragon_metrics ollama; }
--- client
login('10.0.0.1', 'alice', 'wrong horse');
login('10.0.0.1', 'bob', 'wrong staple');
my $limited = login('10.0.0.1', 'alice', 'correct horse');
die "not limited: " . answer($limited) unless $limited->{status} == 429;
die "Retry-After: $limited->{headers}{'retry-after'}"
    unless $limited->{headers}{'retry-after'} =~ /^[123]$/;
my $other = login('10.0.0.2', 'bob', 'battery staple');
my $hashed = tasks_done();
# a refused login counts nothing: the probes until the window ends are free
my $ok = wait_until(sub {
    my $r = login('10.0.0.1', 'alice', 'correct horse');
    die answer($r) . "\n" unless $r->{status} == 200 || $r->{status} == 429;
    $r->{status} == 200 ? $r : undef
}, 'the window to end', 15);
join "\n", "other address: $other->{status}", "hashes before: $hashed",
    "after the window: $ok->{status}, hashes " . tasks_done(),
    logins_metrics() =~ /ok=2 refused=2 limited=[1-9]\d* / ? 'counted' : logins_metrics()
--- client_output
other address: 200
hashes before: 3
after the window: 200, hashes 4
counted



=== TEST 3: a user name is limited across addresses, and the limited address is not
--- client
my ($before) = grep { /^alice\t/ } split /\n/, tool('user list');
my @r = (login('10.0.1.1', 'alice', 'wrong horse'),
         login('10.0.1.2', 'alice', 'wrong again'));
my $limited = login('10.0.1.3', 'alice', 'correct horse');
my ($after) = grep { /^alice\t/ } split /\n/, tool('user list');
die "alice's record changed: $before / $after" unless $before eq $after;
my $hashed = tasks_done();
my $bob = login('10.0.1.3', 'bob', 'battery staple');
join "\n", (map { answer($_) } @r, $limited), "hashes: $hashed",
    "bob from the same address: $bob->{status}", logins_metrics()
--- client_output
401 Incorrect username or password/Incorrect username or password www:Bearer retry:-
401 Incorrect username or password/Incorrect username or password www:Bearer retry:-
429 Too many login attempts/Too many login attempts www:- retry:ok
hashes: 2
bob from the same address: 200
ok=1 refused=2 limited=1 inactive=0 untracked=0
--- error_log
too many login attempts of the user name, retry after



=== TEST 4: an unknown name, an invalid one and a 300-byte one are limited exactly as a known one
--- client
my %seen;
my $n = 0;
for my $name ('alice', 'mallory', 'not a name!', 'x' x 300) {
    my @a = map { answer($_) } login("10.0.2.$n", $name, 'wrong'),
        login("10.0.2." . ($n + 1), $name, 'wrong'),
        login("10.0.2." . ($n + 2), $name, $name eq 'alice' ? 'correct horse' : 'wrong');
    $n += 3;
    $seen{ join ' | ', @a }++;
}
die "the names' answers differ:\n" . join("\n", keys %seen) if keys %seen != 1;
my ($answers) = keys %seen;
"$answers\nhashes: " . tasks_done() . "\n" . logins_metrics()
--- client_output
401 Incorrect username or password/Incorrect username or password www:Bearer retry:- | 401 Incorrect username or password/Incorrect username or password www:Bearer retry:- | 429 Too many login attempts/Too many login attempts www:- retry:ok
hashes: 8
ok=0 refused=8 limited=4 inactive=0 untracked=0



=== TEST 5: a success clears its name's count, not its address's
--- client
my @r = (
    login('10.0.3.1', 'alice', 'wrong horse'),      # alice 1
    login('10.0.3.2', 'alice', 'correct horse'),    # alice cleared; 10.0.3.2 1
    login('10.0.3.3', 'alice', 'wrong horse'),      # alice 1 (3 without the clear)
    login('10.0.3.4', 'alice', 'wrong horse'),      # alice 2
    login('10.0.3.5', 'alice', 'correct horse'),    # alice over
    login('10.0.3.2', 'bob', 'wrong staple'),       # 10.0.3.2 2
    login('10.0.3.2', 'bob', 'battery staple'),     # 10.0.3.2 over
);
join(' ', map { $_->{status} } @r) . "\nhashes: " . tasks_done() . "\n" . logins_metrics()
--- client_output
401 200 401 401 429 401 429
hashes: 5
ok=1 refused=4 limited=2 inactive=0 untracked=0



=== TEST 6: a disabled user's login is counted as inactive, and as an attempt
--- client
user_add('carol', 'chat', 'carol secret');
tool('user disable carol');
my @r = map { login("10.0.4.$_", 'carol', 'carol secret') } 1 .. 3;
tool('user remove carol');
join(' ', map { $_->{status} } @r) . "\n" . logins_metrics()
--- client_output
403 403 429
ok=0 refused=0 limited=1 inactive=2 untracked=0



=== TEST 7: two workers share the count: of one address's logins exactly two are hashed, whichever worker takes them
--- workers: 2
--- master_on
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location /auth/ {
            seadragon_auth ollama thread_pool=logins attempts=2/1m;
            add_header X-Pid $pid always;
        }
    }
_EOC_
--- client
my (%pids, %status);
my $n = 0;
while ($n < 40 && ($n < 8 || keys %pids < 2)) {
    my $r = login('10.0.5.1', "user$n", 'wrong', port => $ENV{TEST_NGINX_SPREAD_PORT});
    $n++;
    $pids{ $r->{headers}{'x-pid'} }++;
    $status{ $r->{status} }++;
}
my ($limited) = logins_metrics() =~ /limited=(\d+)/;
join "\n", "workers: " . scalar(keys %pids), "hashed: " . ($status{401} // 0),
    "limited: " . (($status{429} // 0) == $n - 2 && $limited == $n - 2 ? 'the rest' : "$status{429} of $n, $limited counted"),
    "hashes: " . tasks_done()
--- client_output
workers: 2
hashed: 2
limited: the rest
hashes: 2



=== TEST 8: attempts=off counts nothing: every login is hashed
--- config
    location /auth/ {
        seadragon_auth ollama thread_pool=logins attempts=off;
    }
    location = /metrics { seadragon_metrics ollama; }
--- client
my @r = map { login('10.0.6.1', 'alice', "wrong $_") } 1 .. 4;
push @r, login('10.0.6.1', 'alice', 'correct horse');
join(' ', map { $_->{status} } @r) . "\nhashes: " . tasks_done() . "\n" . logins_metrics()
--- client_output
401 401 401 401 200
hashes: 5
ok=1 refused=4 limited=0 inactive=0 untracked=0



=== TEST 9: the default is 10 attempts a minute
--- config
    location /auth/ { seadragon_auth ollama thread_pool=logins; }
    location = /metrics { seadragon_metrics ollama; }
--- client
my @r = map { login('10.0.7.1', "name$_", 'wrong') } 1 .. 11;
join(' ', map { $_->{status} } @r) . "\nhashes: " . tasks_done()
--- client_output
401 401 401 401 401 401 401 401 401 401 429
hashes: 10



=== TEST 10: a zone short of memory serves the logins uncounted, and says so
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:64k max_queued=100000;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
--- client
my @r = map { login('10.0.8.1', 'alice', 'wrong horse') } 1 .. 3;
push @r, login('10.0.8.1', 'alice', 'correct horse');
my $m = request('GET /metrics')->{body};
my ($records) = $m =~ /^seadragon_login_records\{zone="ollama"\} (\d+)$/m;
join(' ', map { $_->{status} } @r) . "\nhashes: " . tasks_done() . "\n"
    . logins_metrics() . "\nrecords: $records"
--- client_output
401 401 401 200
hashes: 4
ok=1 refused=3 limited=0 inactive=0 untracked=8
records: 0
--- error_log
is short of memory for the counts of login attempts: the login is served
--- no_error_log
[alert]
[crit]



=== TEST 11: attempts= needs N/TIME
--- config
    location /auth/ { seadragon_auth ollama attempts=10; }
--- must_die
--- error_log
invalid value "attempts=10": attempts= is how many logins an address and a user name may attempt in a time, N/TIME



=== TEST 12: attempts= refuses 0 attempts
--- config
    location /auth/ { seadragon_auth ollama attempts=0/1m; }
--- must_die
--- error_log
invalid value "attempts=0/1m": attempts=



=== TEST 13: attempts= refuses a time that is not one, or longer than a day
--- config
    location /auth/ { seadragon_auth ollama attempts=5/2d; }
--- must_die
--- error_log
invalid value "attempts=5/2d": attempts=



=== TEST 14: attempts= refuses a word that is not off
--- config
    location /auth/ { seadragon_auth ollama attempts=on; }
--- must_die
--- error_log
invalid value "attempts=on": attempts=
