# The admin page (conf/html/admin.html) in headless Chromium: it shows the
# gate, what holds it, the queue in dispatch order and the counters, live;
# a screenshot is kept in t/servroot/014-admin-page/admin-page.png.
use lib 't/lib';
use Test::Seadragon;
use File::Temp ();

our $tool = "$ENV{PWD}/build/seadragon-store";
our $dir = File::Temp->newdir();
$ENV{TEST_NGINX_STORE} = "$dir/store";

if ($> == 0 && !-x '/usr/bin/chromium') {
    system("$ENV{PWD}/scripts/install-deps chromium >/dev/null 2>&1");
}

if (!-x '/usr/bin/chromium' || !-x $tool) {
    require Test::More;
    Test::More::plan(skip_all => "needs Debian's chromium and build/seadragon-store");
}

sub tool {
    my $out = `'$tool' --store '$ENV{TEST_NGINX_STORE}' @_ 2>/dev/null`;
    die "seadragon-store @_ failed" if $?;
    chomp $out;
    return $out;
}

tool('init');
our $admin = tool('key create ops --source admin');

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

sub page_url { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/admin/page?key=$_[0]" }

# what a person reads on the page, from its DOM
sub page {
    my $dom = chromium(page_url($_[0] // $admin), '--dump-dom');
    my %p;
    ($p{ready}) = $dom =~ /<body data-ready="([^"]*)"/;
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
    while ($counters =~ /<tr data-source="(\w+)">(.*?)<\/tr>/g) {
        my ($src, $cells) = ($1, $2);
        my ($received) = $cells =~ /<td class="num received">(\d+)</;
        my ($served) = $cells =~ /<td class="num served">(\d+)</;
        $p{counters}{$src} = "$received/$served";
    }
    return \%p;
}

sub chat {
    my ($tag, %headers) = @_;
    my ($source) = $tag =~ /^([a-z]+)/;
    return start_request('POST /api/chat',
        body => '{"model":"llama3:70b","messages":[]}',
        headers => { 'X-Standin-Tag' => $tag, "X-$source" => 1,
                     'X-Standin-Tokens' => 1, %headers });
}


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
    my $hold = chat('hold', 'X-Standin-Hold' => 1);
    wait_until(sub { standin_stats()->{active} == 1 }, 'the hold');
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
