BOT_NAME = "testbed"
SPIDER_MODULES = ["testbed.spiders"]
NEWSPIDER_MODULE = "testbed.spiders"
ROBOTSTXT_OBEY = False
ITEM_PIPELINES = {"testbed.pipelines.DelayedItems": 100}
