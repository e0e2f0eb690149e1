# Defects found in the review of issue 11's merge, each block failing on
# the merged code and passing with its fix; every block checks the state
# that the defect left wrong, not only a status.
use lib 't/lib';
use Test::Seadragon;
use File::Temp ();

master_on();

our $tool = "$ENV{PWD}/build/seadragon-store";

plan skip_all => "build/seadragon-store is not built: run make" unless -x $tool;

our $dir = File::Temp->newdir();
chmod 0755, "$dir" or die $!;
$ENV{TEST_NGINX_STORE} = "$dir/store";
$ENV{TEST_NGINX_CACHE} = "$dir/cache";

sub tool {
    my $out = `'$tool' --store '$dir/store' @_ 2>&1`;
    die "seadragon-store @_: $out" if $?;
    chomp $out;
    return $out;
}

tool('init');
tool('whitelist add 127.0.0.1');
our $key = tool('key create editor --source coding');

# the processes of nginx other than the one worker (the cache manager and
# loader): told apart by pid, since under valgrind no process title shows
sub helpers {
    my ($worker) = @_;
    return grep { $_ != $worker }
           Test::Seadragon::children_of(nginx_master_pid());
}

# which files of the store a process holds open or mapped
sub holds_store {
    my ($pid) = @_;
    my %seen;
    for my $fd (glob "/proc/$pid/fd/*") {
        my $to = readlink($fd) // next;
        $seen{$1} = 1 if $to =~ m{/store/(data|lock)\.mdb};
    }
    if (open my $maps, '<', "/proc/$pid/maps") {
        while (<$maps>) { $seen{"$1 mapped"} = 1 if m{/store/(data|lock)\.mdb} }
    }
    return join(',', sort keys %seen) || 'nothing';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the cache manager and loader, helpers that never serve a request, do not open the store: no reader slot (the loader ends with exit() and would leave it behind), no map, no tick of their own
--- http_config
    proxy_cache_path $TEST_NGINX_CACHE keys_zone=answers:1m;
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding key;
    seadragon_source api    priority=3 whitelist;
--- config
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Pid $pid always;
    }
--- client
    my $r = request('POST /api/chat',
        body => '{"model":"llama3:70b","messages":[],"stream":false}',
        headers => { 'X-Standin-Tokens' => 1, Authorization => "Bearer $key",
                     'X-Coding' => 1 });
    my $worker = $r->{headers}{'x-pid'};
    my @helpers;
    wait_until(sub { (@helpers = helpers($worker)) == 2 }, 'the cache manager and loader');
    join "\n",
        "served: $r->{status}",
        "the worker holds: " . holds_store($worker),
        "the cache manager and loader hold: " . join(' ', map { holds_store($_) } @helpers);
--- client_output
served: 200
the worker holds: data,data mapped,lock,lock mapped
the cache manager and loader hold: nothing nothing
--- no_error_log
[alert]
[emerg]



=== TEST 2: the store out of reach: the admin API's refusal is the queue's, the same words and Retry-After, and changes nothing
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding key;
    seadragon_source api    priority=3 whitelist;
--- config
    seadragon_json_errors on;
    location /t/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/admin/ { seadragon_admin ollama; }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $restart = sub {
        my @old = nginx_worker_pids();
        kill 'TERM', @old;
        wait_until(sub { my @p = nginx_worker_pids();
                         @p == 1 && !grep { $_ == $p[0] } @old }, 'a new worker');
    };
    my $show = sub {
        my $r = shift;
        "$r->{status} Retry-After " . ($r->{headers}{'retry-after'} // '-')
            . " $r->{body}";
    };
    rename "$dir/store", "$dir/away" or die "rename: $!";
    $restart->();
    my $queue = request('POST /api/chat',
        body => '{"model":"llama3:70b","messages":[],"stream":false}',
        headers => { 'X-Standin-Tokens' => 1, Authorization => "Bearer $key" });
    my $admin = request('POST /api/admin/gate/pause',
        headers => { Authorization => "Bearer $key" });
    my $gate = json_decode(request('GET /t/admin/queue')->{body})->{gate};
    rename "$dir/away", "$dir/store" or die "rename back: $!";
    join "\n",
        "queue: " . $show->($queue),
        "admin: " . $show->($admin),
        "the gate: $gate";
--- client_output
queue: 503 Retry-After 5 {"error":"the gateway cannot check access right now, please try again"}
admin: 503 Retry-After 5 {"error":"the gateway cannot check access right now, please try again"}
the gate: open
