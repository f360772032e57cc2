import { MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { consoleHandler, loadConsoleAssets } from './console-assets';

/** Serves the staff console's static files at /console (see console-assets.ts). */
@Module({})
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(consoleHandler(loadConsoleAssets()))
      .forRoutes({ path: 'console', method: RequestMethod.GET }, { path: 'console/*path', method: RequestMethod.GET });
  }
}
