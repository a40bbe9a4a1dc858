from jobqueue_server.cli import main

main()
